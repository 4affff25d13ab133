from is_pangram import is_pangram

def test_classic():
    assert is_pangram("The quick brown fox jumps over the lazy dog") is True


def test_missing_letter():
    assert is_pangram("a quick movement of the enemy will jeopardize five gunboats") is False


def test_mixed_case_and_underscores():
    assert is_pangram("THE_quick_BROWN_fox_JUMPS_over_THE_lazy_DOG") is True


def test_half_alphabet_twice():
    assert is_pangram("abcdefghijklm ABCDEFGHIJKLM") is False


def test_empty():
    assert is_pangram("") is False
