from is_prime import is_prime

def test_small_primes():
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


def test_not_prime_below_two():
    assert is_prime(1) is False
    assert is_prime(0) is False
    assert is_prime(-7) is False


def test_prime():
    assert is_prime(7919) is True


def test_composites():
    assert is_prime(91) is False
    assert is_prime(7917) is False


def test_square_of_prime():
    assert is_prime(49) is False
    assert is_prime(1_000_003 * 1_000_003) is False


def test_larger_prime():
    assert is_prime(1_000_003) is True
