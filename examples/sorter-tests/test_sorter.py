import random

import pytest

from sorter import sort


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
    assert sort(data) == sorted(data)


def test_does_not_mutate_input():
    data = [3, 1, 2]
    sort(data)
    assert data == [3, 1, 2]
