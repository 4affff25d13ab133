from collections import Counter


def is_anagram(a: str, b: str) -> bool:
    """Same multiset of letters, ignoring case and non-letters."""
    return Counter(ch.lower() for ch in a if ch.isalpha()) == Counter(ch.lower() for ch in b if ch.isalpha())
