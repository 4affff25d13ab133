from word_count import word_count

def test_sentence():
    assert word_count("the cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_case_insensitive():
    assert word_count("A a A") == {"a": 3}


def test_punctuation_ignored():
    assert word_count("x, y; x. Y! x?") == {"x": 3, "y": 2}


def test_digits_count_as_words():
    assert word_count("1 2 2 3 3 3") == {"1": 1, "2": 2, "3": 3}


def test_empty():
    result = word_count("")
    assert type(result) is dict and result == {}
