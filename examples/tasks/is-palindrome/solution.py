def is_palindrome(text: str) -> bool:
    """Palindrome check over letters and digits, ignoring case."""
    kept = [ch.lower() for ch in text if ch.isalnum()]
    return kept == kept[::-1]
