def reverse_words(text: str) -> str:
    """Words in reverse order, single-spaced."""
    return " ".join(reversed(normalize_spaces(text).split()))
