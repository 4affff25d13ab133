from run_length_encode import run_length_encode

def test_basic():
    assert run_length_encode("aaab") == "3a1b"


def test_no_repeats():
    assert run_length_encode("abc") == "1a1b1c"


def test_runs_are_not_merged():
    assert run_length_encode("aabbaa") == "2a2b2a"


def test_long_run():
    assert run_length_encode("z" * 12) == "12z"


def test_spaces_and_punctuation():
    assert run_length_encode("  x!!") == "2 1x2!"


def test_empty():
    assert run_length_encode("") == ""
