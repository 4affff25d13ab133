def sort(items):
    """Merge sort; returns a new list."""
    items = list(items)
    if len(items) <= 1:
        return items
    mid = len(items) // 2
    left, right = sort(items[:mid]), sort(items[mid:])
    out = []
    while left and right:
        out.append(left.pop(0) if left[0] <= right[0] else right.pop(0))
    return out + left + right
