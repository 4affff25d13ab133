def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words with their counts; ties alphabetical."""
    if n <= 0:
        return []
    ranked = sorted(word_count(text).items(), key=lambda item: (-item[1], item[0]))
    return ranked[:n]
