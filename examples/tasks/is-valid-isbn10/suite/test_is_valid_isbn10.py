from is_valid_isbn10 import is_valid_isbn10

def test_valid_with_hyphens():
    assert is_valid_isbn10("0-306-40615-2") is True


def test_valid_plain_and_x():
    assert is_valid_isbn10("0306406152") is True
    assert is_valid_isbn10("080442957X") is True


def test_wrong_check_digit():
    assert is_valid_isbn10("0306406153") is False


def test_x_only_last():
    assert is_valid_isbn10("X804429570") is False


def test_wrong_length():
    assert is_valid_isbn10("030640615") is False
    assert is_valid_isbn10("03064061522") is False
    assert is_valid_isbn10("") is False


def test_other_characters():
    assert is_valid_isbn10("0306a06152") is False
    assert is_valid_isbn10("0 306 40615 2") is False
