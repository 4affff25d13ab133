def luhn_valid(number: str) -> bool:
    """Luhn checksum over the digits (spaces ignored)."""
    digits = number.replace(" ", "")
    if len(digits) < 2 or any(ch not in "0123456789" for ch in digits):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0
