from is_leap_year import is_leap_year

def test_ordinary_leap_year():
    assert is_leap_year(2024) is True
    assert is_leap_year(1996) is True


def test_ordinary_common_year():
    assert is_leap_year(2023) is False
    assert is_leap_year(2001) is False


def test_centuries():
    assert is_leap_year(1900) is False
    assert is_leap_year(2100) is False


def test_four_centuries():
    assert is_leap_year(2000) is True
    assert is_leap_year(1600) is True
