from is_power_of_two import is_power_of_two

def test_small_powers():
    assert [n for n in range(-4, 20) if is_power_of_two(n)] == [1, 2, 4, 8, 16]


def test_large_power():
    assert is_power_of_two(2**100) is True


def test_near_powers():
    assert is_power_of_two(2**100 + 1) is False
    assert is_power_of_two(1023) is False


def test_zero_and_negative():
    assert is_power_of_two(0) is False
    assert is_power_of_two(-8) is False
