def is_pangram(text: str) -> bool:
    """Every ASCII letter present, case-insensitively."""
    return set("abcdefghijklmnopqrstuvwxyz") <= set(text.lower())
