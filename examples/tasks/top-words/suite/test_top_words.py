from top_words import top_words

TEXT = "the cat saw the dog; the dog saw a bird. A cat!"


def test_top_three():
    assert top_words(TEXT, 3) == [("the", 3), ("a", 2), ("cat", 2)]


def test_ties_are_alphabetical():
    assert top_words("b a c b a c", 3) == [("a", 2), ("b", 2), ("c", 2)]


def test_n_larger_than_vocabulary():
    assert top_words("one two two", 10) == [("two", 2), ("one", 1)]


def test_zero_or_negative_n():
    assert top_words(TEXT, 0) == []
    assert top_words(TEXT, -2) == []


def test_empty_text():
    assert top_words("", 5) == []


def test_items_are_tuples():
    result = top_words("Go go GO stop", 1)
    assert result == [("go", 3)] and type(result[0]) is tuple
