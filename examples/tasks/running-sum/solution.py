def running_sum(nums: list[float]) -> list[float]:
    """Prefix sums."""
    out = []
    total = 0
    for x in nums:
        total += x
        out.append(total)
    return out
