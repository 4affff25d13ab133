def lcm_list(nums: list[int]) -> int:
    """LCM of all the numbers (1 for none, 0 if any is 0)."""
    result = 1
    for n in nums:
        if n == 0:
            return 0
        result = abs(result * n) // gcd_list([result, n])
    return result
