from words import words

def test_simple_sentence():
    assert words("Hello, world!") == ["hello", "world"]


def test_apostrophes_and_hyphens_split():
    assert words("Don't stop-me now") == ["don", "t", "stop", "me", "now"]


def test_digits_are_word_characters():
    assert words("Route 66 & I-95") == ["route", "66", "i", "95"]


def test_non_ascii_letters_are_separators():
    assert words("ÀBc déf") == ["bc", "d", "f"]


def test_no_words():
    assert words("") == []
    assert words("  ... \n !? ") == []


def test_returns_a_list():
    result = words("a b")
    assert type(result) is list and result == ["a", "b"]
