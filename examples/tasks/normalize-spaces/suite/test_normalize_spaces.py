from normalize_spaces import normalize_spaces

def test_collapses_runs_of_spaces():
    assert normalize_spaces("a   b    c") == "a b c"


def test_strips_both_ends():
    assert normalize_spaces("   hello world  ") == "hello world"


def test_tabs_and_newlines():
    assert normalize_spaces("one\t\ttwo\n\nthree\r\n") == "one two three"


def test_only_whitespace():
    assert normalize_spaces(" \t\n ") == ""


def test_empty():
    assert normalize_spaces("") == ""


def test_already_normal():
    assert normalize_spaces("nothing to do") == "nothing to do"
