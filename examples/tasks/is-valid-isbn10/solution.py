def is_valid_isbn10(code: str) -> bool:
    """ISBN-10 check-digit validation."""
    chars = code.replace("-", "")
    if len(chars) != 10:
        return False
    total = 0
    for i, ch in enumerate(chars):
        if ch in "0123456789":
            value = int(ch)
        elif ch == "X" and i == 9:
            value = 10
        else:
            return False
        total += (10 - i) * value
    return total % 11 == 0
