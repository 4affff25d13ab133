from slugify import slugify

def test_two_words():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces_collapse():
    assert slugify("  Hello,   World!  ") == "hello-world"


def test_underscores_and_repeated_hyphens():
    assert slugify("Mixed_CASE__and--dashes") == "mixed-case-and-dashes"


def test_digits_kept():
    assert slugify("Top 10 Tips (2024)") == "top-10-tips-2024"


def test_non_ascii_letters_are_separators():
    assert slugify("naïve café") == "na-ve-caf"


def test_nothing_left():
    assert slugify(" --- !!! ") == ""
    assert slugify("") == ""
