"""Counting helpers the quality rules share."""

from __future__ import annotations

import re
from collections import Counter

WORD = re.compile(r"\w+", re.UNICODE)
PARAGRAPH_BREAK = re.compile(r"\n{2,}")
LINE_BREAK = re.compile(r"\n+")
# Line ends that count as punctuation, Latin and CJK scripts alike.
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "”", "’", "。", "！", "？", "」", "』")


def lines(text: str) -> list[str]:
    """The lines of a normalized text (`\n` is its only line end; see strata.pipeline.documents)."""
    return text.split("\n")


def words(text: str) -> list[str]:
    """Word tokens (Unicode letters, digits, underscore runs)."""
    return WORD.findall(text)


def duplicates(elements: list[str]) -> tuple[int, int]:
    """How many elements repeat an earlier one, and how many characters those repeats hold."""
    seen: set[str] = set()
    count = chars = 0
    for element in elements:
        if element in seen:
            count += 1
            chars += len(element)
        else:
            seen.add(element)
    return count, chars


def top_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters covered by the most frequent word n-gram (its length × its count); n >= 1."""
    _check_n(n)
    if len(tokens) < n:
        return 0
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    gram, count = grams.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def repeated_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters in word n-grams that repeat an earlier one; a repeat skips past itself; n >= 1."""
    _check_n(n)
    seen: set[str] = set()
    chars = i = 0
    while i <= len(tokens) - n:
        gram = " ".join(tokens[i : i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"word n-grams need n >= 1, got {n}")
