def flatten(items: list) -> list:
    """Flatten nested lists and tuples, iteratively (no recursion limit)."""
    out = []
    stack = [iter(items)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, tuple)):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out
