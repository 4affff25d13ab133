import math


def gcd_list(nums: list[int]) -> int:
    """GCD of all the numbers (0 for none)."""
    result = 0
    for n in nums:
        result = math.gcd(result, n)
    return result
