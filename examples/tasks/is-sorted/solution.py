def is_sorted(items: list) -> bool:
    """Non-decreasing order check."""
    return all(items[i] <= items[i + 1] for i in range(len(items) - 1))
