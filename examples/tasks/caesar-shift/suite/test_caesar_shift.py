from caesar_shift import caesar_shift

def test_simple():
    assert caesar_shift("abc", 1) == "bcd"


def test_wraps():
    assert caesar_shift("xyz", 3) == "abc"
    assert caesar_shift("XYZ", 3) == "ABC"


def test_rot13_keeps_case_and_punctuation():
    assert caesar_shift("Hello, World!", 13) == "Uryyb, Jbeyq!"


def test_negative_and_large_shifts():
    assert caesar_shift("abc", -1) == "zab"
    assert caesar_shift("abc", 27) == "bcd"
    assert caesar_shift("abc", -53) == "zab"


def test_non_ascii_unchanged():
    assert caesar_shift("café 42", 2) == "eché 42"


def test_round_trip():
    text = "The Quick Brown Fox, 1234."
    assert caesar_shift(caesar_shift(text, 11), -11) == text
    assert caesar_shift(text, 11) != text
