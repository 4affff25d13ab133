def is_power_of_two(n: int) -> bool:
    """Power-of-two check via the lowest set bit."""
    return n > 0 and n & (n - 1) == 0
