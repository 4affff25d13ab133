from luhn_valid import luhn_valid

def test_valid_card_number():
    assert luhn_valid("4539 3195 0343 6467") is True


def test_invalid_card_number():
    assert luhn_valid("8273 1232 7352 0569") is False


def test_classic_example():
    assert luhn_valid("79927398713") is True
    assert luhn_valid("79927398710") is False


def test_short_inputs():
    assert luhn_valid("0") is False
    assert luhn_valid(" 0 ") is False
    assert luhn_valid("059") is True


def test_other_characters():
    assert luhn_valid("059a") is False
    assert luhn_valid("055-444-285") is False
    assert luhn_valid("055 444 285") is True
