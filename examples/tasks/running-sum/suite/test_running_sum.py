from running_sum import running_sum

def test_integers():
    assert running_sum([1, 2, 3, 4]) == [1, 3, 6, 10]


def test_negatives():
    assert running_sum([5, -2, -3, 1]) == [5, 3, 0, 1]


def test_single():
    assert running_sum([42]) == [42]


def test_empty():
    assert running_sum([]) == []


def test_floats():
    assert running_sum([0.5, 0.25, 0.25]) == [0.5, 0.75, 1.0]
