"""Count words in {"text": ...}; returns the total and the most common words."""

from collections import Counter


def main(value):
    words = str(value.get("text", "")).lower().split()
    return {"words": len(words), "top": Counter(words).most_common(3)}
