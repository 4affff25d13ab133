from rotate import rotate

def test_right():
    assert rotate([1, 2, 3, 4, 5], 2) == [4, 5, 1, 2, 3]


def test_left():
    assert rotate([1, 2, 3, 4, 5], -1) == [2, 3, 4, 5, 1]


def test_more_than_length():
    assert rotate([1, 2, 3, 4, 5], 7) == [4, 5, 1, 2, 3]
    assert rotate([1, 2, 3], -4) == [2, 3, 1]


def test_zero_returns_a_copy():
    data = ["a", "b"]
    result = rotate(data, 0)
    assert result == ["a", "b"] and result is not data


def test_empty():
    assert rotate([], 3) == []


def test_input_unchanged():
    data = [1, 2, 3]
    rotate(data, 1)
    assert data == [1, 2, 3]
