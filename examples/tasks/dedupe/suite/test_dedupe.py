from dedupe import dedupe

def test_keeps_first_occurrence_order():
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_strings():
    assert dedupe(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]


def test_no_repeats():
    assert dedupe([5, 4, 9]) == [5, 4, 9]


def test_all_repeats():
    assert dedupe([7] * 10) == [7]


def test_empty():
    assert dedupe([]) == []


def test_input_unchanged():
    data = [1, 1, 2, 2]
    result = dedupe(data)
    assert result == [1, 2] and data == [1, 1, 2, 2]
