import re


def words(text: str) -> list[str]:
    """Runs of ASCII letters and digits, lower-cased, in order."""
    return [w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)]
