from is_anagram import is_anagram

def test_simple():
    assert is_anagram("listen", "silent") is True


def test_case_spaces_and_punctuation():
    assert is_anagram("Dormitory", "dirty room!") is True


def test_different_letters():
    assert is_anagram("abc", "abd") is False


def test_different_counts():
    assert is_anagram("aab", "abb") is False
    assert is_anagram("a", "aa") is False


def test_empty():
    assert is_anagram("", "") is True
    assert is_anagram("a", "") is False
