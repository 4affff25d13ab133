def title_case(text: str) -> str:
    """Title case with lower-case minor words inside the title."""
    minor = {"a", "an", "and", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}
    parts = normalize_spaces(text).split()
    out = []
    for i, word in enumerate(parts):
        lower = word.lower()
        if 0 < i < len(parts) - 1 and lower in minor:
            out.append(lower)
        else:
            out.append(word[:1].upper() + word[1:].lower())
    return " ".join(out)
