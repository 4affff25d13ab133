from fizzbuzz import fizzbuzz

def test_first_five():
    assert fizzbuzz(5) == ["1", "2", "Fizz", "4", "Buzz"]


def test_fifteen():
    result = fizzbuzz(15)
    assert len(result) == 15
    assert result[-1] == "FizzBuzz"
    assert result[9] == "Buzz" and result[8] == "Fizz"


def test_zero_and_negative():
    assert fizzbuzz(0) == []
    assert fizzbuzz(-3) == []


def test_hundred():
    result = fizzbuzz(100)
    assert len(result) == 100
    assert result.count("FizzBuzz") == 6
    assert result.count("Fizz") == 27
    assert result.count("Buzz") == 14
    assert result[96] == "97"


def test_all_strings():
    assert all(type(x) is str for x in fizzbuzz(30))
