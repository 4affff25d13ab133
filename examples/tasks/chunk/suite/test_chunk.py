from chunk import chunk

def test_uneven():
    assert chunk([1, 2, 3, 4, 5, 6, 7], 3) == [[1, 2, 3], [4, 5, 6], [7]]


def test_even():
    assert chunk(["a", "b", "c", "d"], 2) == [["a", "b"], ["c", "d"]]


def test_size_larger_than_list():
    assert chunk([1, 2], 5) == [[1, 2]]


def test_empty():
    assert chunk([], 3) == []


def test_bad_size():
    for size in (0, -1):
        try:
            chunk([1, 2, 3], size)
        except ValueError:
            continue
        raise AssertionError(f"chunk(..., {size}) did not raise ValueError")


def test_input_unchanged():
    data = [1, 2, 3, 4, 5]
    chunk(data, 2)
    assert data == [1, 2, 3, 4, 5]
