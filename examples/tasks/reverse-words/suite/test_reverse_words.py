from reverse_words import reverse_words

def test_two_words():
    assert reverse_words("hello world") == "world hello"


def test_irregular_whitespace():
    assert reverse_words("  one two\t\tthree \n") == "three two one"


def test_punctuation_stays_with_word():
    assert reverse_words("Hi, there!") == "there! Hi,"


def test_single_word():
    assert reverse_words("single") == "single"


def test_empty_and_blank():
    assert reverse_words("") == ""
    assert reverse_words("   ") == ""
