from lcm_list import lcm_list

def test_pair():
    assert lcm_list([4, 6]) == 12


def test_one_to_ten():
    assert lcm_list(list(range(1, 11))) == 2520


def test_single_and_negative():
    assert lcm_list([7]) == 7
    assert lcm_list([-4, 6]) == 12


def test_zero():
    assert lcm_list([3, 0, 5]) == 0


def test_empty():
    assert lcm_list([]) == 1


def test_large():
    assert lcm_list([2**40, 3**20, 2**10]) == 2**40 * 3**20
