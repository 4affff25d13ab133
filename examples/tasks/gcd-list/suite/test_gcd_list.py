from gcd_list import gcd_list

def test_three_numbers():
    assert gcd_list([12, 18, 24]) == 6


def test_coprime():
    assert gcd_list([9, 28]) == 1


def test_single_and_negative():
    assert gcd_list([7]) == 7
    assert gcd_list([-4, 6]) == 2
    assert gcd_list([-9]) == 9


def test_zeros():
    assert gcd_list([0, 5]) == 5
    assert gcd_list([0, 0]) == 0


def test_empty():
    assert gcd_list([]) == 0
