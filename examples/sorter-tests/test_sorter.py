import random

import pytest

from sorter import sort

# Expected values are computed before the deliverable sees the input: a sort that empties
# or rewrites the list it was given cannot change what it is compared with.


def test_empty():
    assert sort([]) == []


def test_already_sorted():
    assert sort([1, 2, 3]) == [1, 2, 3]


def test_reversed():
    assert sort([5, 4, 3, 2, 1]) == [1, 2, 3, 4, 5]


def test_duplicates():
    assert sort([3, 1, 3, 2, 1]) == [1, 1, 2, 3, 3]


@pytest.mark.parametrize("seed", range(5))
def test_random(seed):
    rng = random.Random(seed)
    data = [rng.randint(-1000, 1000) for _ in range(200)]
    expected = sorted(data)
    result = sort(data)
    assert type(result) is list and result == expected


def test_does_not_mutate_input():
    rng = random.Random(99)
    data = [rng.randint(-1000, 1000) for _ in range(100)]
    original = list(data)
    sort(data)
    assert data == original
