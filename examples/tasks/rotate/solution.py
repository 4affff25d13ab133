def rotate(items: list, k: int) -> list:
    """Rotate right by k (left when negative)."""
    if not items:
        return []
    k %= len(items)
    return list(items[-k:]) + list(items[:-k]) if k else list(items)
