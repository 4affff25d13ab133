def merge_sorted(a: list, b: list) -> list:
    """Linear merge of two ascending lists; ValueError if either is unsorted."""
    if not is_sorted(a) or not is_sorted(b):
        raise ValueError("inputs must be sorted")
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if b[j] < a[i]:
            out.append(b[j])
            j += 1
        else:
            out.append(a[i])
            i += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out
