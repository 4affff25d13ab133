from balanced_brackets import balanced_brackets

def test_empty_and_no_brackets():
    assert balanced_brackets("") is True
    assert balanced_brackets("plain text") is True


def test_nested():
    assert balanced_brackets("([]{})") is True
    assert balanced_brackets("f(a[1], {b: (2)})") is True


def test_mismatched_kind():
    assert balanced_brackets("(]") is False


def test_unclosed_or_unopened():
    assert balanced_brackets("(()") is False
    assert balanced_brackets("())") is False
    assert balanced_brackets(")(") is False


def test_crossed():
    assert balanced_brackets("([)]") is False
