from title_case import title_case

def test_minor_words_inside():
    assert title_case("the lord of the rings") == "The Lord of the Rings"


def test_upper_case_input():
    assert title_case("A TALE OF TWO CITIES") == "A Tale of Two Cities"


def test_minor_word_last_is_capitalized():
    assert title_case("what is it for") == "What Is It For"


def test_whitespace_normalized():
    assert title_case("  hello \t  WORLD ") == "Hello World"


def test_single_minor_word():
    assert title_case("of") == "Of"


def test_empty():
    assert title_case("") == ""
