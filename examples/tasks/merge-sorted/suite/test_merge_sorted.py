from merge_sorted import merge_sorted

def test_interleaved():
    assert merge_sorted([1, 4, 7], [2, 3, 8, 9]) == [1, 2, 3, 4, 7, 8, 9]


def test_one_empty():
    assert merge_sorted([], [1, 2]) == [1, 2]
    assert merge_sorted([3], []) == [3]
    assert merge_sorted([], []) == []


def test_duplicates():
    assert merge_sorted([1, 2, 2], [2, 3]) == [1, 2, 2, 2, 3]


def test_strings():
    assert merge_sorted(["apple", "pear"], ["fig", "plum"]) == ["apple", "fig", "pear", "plum"]


def test_unsorted_input_raises():
    for a, b in (([2, 1], [3]), ([1], [5, 4])):
        try:
            merge_sorted(a, b)
        except ValueError:
            continue
        raise AssertionError(f"merge_sorted({a}, {b}) did not raise ValueError")


def test_inputs_unchanged():
    a, b = [1, 3], [2, 4]
    merge_sorted(a, b)
    assert a == [1, 3] and b == [2, 4]
