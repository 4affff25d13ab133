from run_length_decode import run_length_decode

def test_basic():
    assert run_length_decode("3a1b") == "aaab"


def test_multi_digit_counts():
    assert run_length_decode("12z") == "z" * 12
    assert run_length_decode("10x2y") == "x" * 10 + "yy"


def test_spaces_and_punctuation():
    assert run_length_decode("2 1x2!") == "  x!!"


def test_empty():
    assert run_length_decode("") == ""


def test_malformed_raises():
    for code in ("a", "3", "2ab", "3a4"):
        try:
            run_length_decode(code)
        except ValueError:
            continue
        raise AssertionError(f"run_length_decode({code!r}) did not raise ValueError")
