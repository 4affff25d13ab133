def median(nums: list[float]) -> float:
    """Median; ValueError on empty input."""
    if not nums:
        raise ValueError("median of an empty list")
    data = sorted(nums)
    mid = len(data) // 2
    if len(data) % 2:
        return float(data[mid])
    return (data[mid - 1] + data[mid]) / 2
