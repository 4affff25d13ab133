from median import median

def test_odd_count():
    assert median([3, 1, 2]) == 2.0


def test_even_count():
    assert median([4, 1, 3, 2]) == 2.5


def test_single():
    result = median([5])
    assert result == 5.0 and type(result) is float


def test_negatives_and_duplicates():
    assert median([-5, -1, -1, 10, 7]) == -1.0


def test_empty_raises():
    try:
        median([])
    except ValueError:
        return
    raise AssertionError("median([]) did not raise ValueError")


def test_input_unchanged():
    data = [9, 2, 7, 4]
    assert median(data) == 5.5
    assert data == [9, 2, 7, 4]
