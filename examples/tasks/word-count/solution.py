def word_count(text: str) -> dict[str, int]:
    """Occurrences of each lower-cased word."""
    counts: dict[str, int] = {}
    for w in words(text):
        counts[w] = counts.get(w, 0) + 1
    return counts
