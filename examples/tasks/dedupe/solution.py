def dedupe(items: list) -> list:
    """Order-preserving removal of repeated items."""
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
