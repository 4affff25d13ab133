from is_sorted import is_sorted

def test_sorted_lists():
    assert is_sorted([1, 2, 2, 3]) is True
    assert is_sorted(["a", "b", "c"]) is True


def test_trivial_lists():
    assert is_sorted([]) is True
    assert is_sorted([42]) is True


def test_descending():
    assert is_sorted([2, 1]) is False


def test_one_out_of_place():
    assert is_sorted([1, 2, 4, 3, 5]) is False
    assert is_sorted([9, 1, 2, 3]) is False


def test_negatives():
    assert is_sorted([-3, -1, 0]) is True
    assert is_sorted([-1, -3]) is False
