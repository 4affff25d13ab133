from is_palindrome import is_palindrome

def test_plain_word():
    assert is_palindrome("racecar") is True
    assert is_palindrome("hello") is False


def test_ignores_case_and_punctuation():
    assert is_palindrome("A man, a plan, a canal: Panama") is True
    assert is_palindrome("No 'x' in Nixon") is True


def test_digits():
    assert is_palindrome("12321") is True
    assert is_palindrome("123") is False


def test_empty_and_punctuation_only():
    assert is_palindrome("") is True
    assert is_palindrome("?!") is True


def test_near_miss():
    assert is_palindrome("ab") is False
    assert is_palindrome("Was it a car or a cat I saw? No.") is False
