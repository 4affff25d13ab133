def normalize_spaces(text: str) -> str:
    """Collapse whitespace runs into single spaces; strip both ends."""
    return " ".join(text.split())
