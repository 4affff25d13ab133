def slugify(text: str) -> str:
    """A URL slug: lower-case ASCII letters and digits separated by single hyphens."""
    out = []
    gap = False
    for ch in normalize_spaces(text).lower():
        if ch.isascii() and ch.isalnum():
            if gap and out:
                out.append("-")
            gap = False
            out.append(ch)
        else:
            gap = True
    return "".join(out)
