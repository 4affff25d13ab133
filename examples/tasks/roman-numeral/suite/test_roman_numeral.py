from roman_numeral import roman_numeral

def test_single_symbols():
    assert [roman_numeral(n) for n in (1, 5, 10, 50, 100, 500, 1000)] == ["I", "V", "X", "L", "C", "D", "M"]


def test_subtractive_forms():
    assert [roman_numeral(n) for n in (4, 9, 40, 90, 400, 900)] == ["IV", "IX", "XL", "XC", "CD", "CM"]


def test_composites():
    assert roman_numeral(14) == "XIV"
    assert roman_numeral(1994) == "MCMXCIV"
    assert roman_numeral(2024) == "MMXXIV"


def test_largest():
    assert roman_numeral(3999) == "MMMCMXCIX"


def test_out_of_range():
    for n in (0, -1, 4000):
        try:
            roman_numeral(n)
        except ValueError:
            continue
        raise AssertionError(f"roman_numeral({n}) did not raise ValueError")
