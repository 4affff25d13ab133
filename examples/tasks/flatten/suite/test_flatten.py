from flatten import flatten

def test_nested():
    assert flatten([1, [2, [3, [4]], 5]]) == [1, 2, 3, 4, 5]


def test_tuples_flatten_too():
    assert flatten([(1, 2), [3, (4, (5,))]]) == [1, 2, 3, 4, 5]


def test_strings_are_items():
    assert flatten(["ab", ["cd", ["e"]]]) == ["ab", "cd", "e"]


def test_empty_nests():
    assert flatten([]) == []
    assert flatten([[], [[]], ([],)]) == []


def test_already_flat():
    assert flatten([None, 0, "x", 1.5]) == [None, 0, "x", 1.5]


def test_deep_nesting():
    data = [7]
    for _ in range(200):
        data = [data, 1]
    assert flatten(data) == [7] + [1] * 200
