def run_length_decode(code: str) -> str:
    """Inverse of count-then-character run-length encoding."""
    out = []
    count = ""
    for ch in code:
        if ch in "0123456789":
            count += ch
        elif count:
            out.append(ch * int(count))
            count = ""
        else:
            raise ValueError(f"character {ch!r} has no count")
    if count:
        raise ValueError("count without a character at the end")
    return "".join(out)
