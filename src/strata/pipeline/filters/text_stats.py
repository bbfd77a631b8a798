"""Counting helpers the quality rules share (definitions as datatrove's, which built FineWeb)."""

from __future__ import annotations

import bisect
import re

import numpy as np
import numpy.typing as npt

PARAGRAPH_BREAK = re.compile(r"\n{2,}")
LINE_BREAK = re.compile(r"\n+")
# C4's line ends (Raffel et al. 2020; tensorflow_datasets' c4_utils).
C4_LINE_END = (".", "?", "!", '"', "'")


def lines(text: str) -> list[str]:
    """The lines of a normalized text (`\n` is its only line end; see strata.pipeline.documents)."""
    return text.split("\n")


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


class WordNgrams:
    """The word n-grams of one document for the repetition rules, as exact integer keys: word
    ids, then for each n the dense rank of (key of the (n-1)-gram, next word id), so two
    n-grams share a key exactly when they have the same words; computed with numpy, once per
    n, instead of joining strings."""

    def __init__(self, tokens: list[str]) -> None:
        ids: dict[str, int] = {}
        self._keys = {1: np.array([ids.setdefault(t, len(ids)) for t in tokens], dtype=np.int64)}
        self._ends = np.cumsum([0] + [len(t) for t in tokens])  # chars before each word
        self._no_repeat_from = len(tokens) + 1  # an n from which no n-gram repeats

    def keys(self, n: int) -> npt.NDArray[np.int64]:
        """One key per n-gram start (len(tokens) - n + 1 of them; none for fewer words)."""
        _check_n(n)
        if n not in self._keys:
            shorter, words = self.keys(n - 1)[:-1], self._keys[1][n - 1 :]
            pairs = shorter * (int(words.max(initial=0)) + 1) + words  # < len(tokens)², exact
            self._keys[n] = np.unique(pairs, return_inverse=True)[1].astype(np.int64)
        return self._keys[n]

    def chars(self, start: int, n: int) -> int:
        """Characters of the n words from `start`, joined without spaces."""
        return int(self._ends[start + n] - self._ends[start])

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram, its words joined by spaces: its
        length × its count, also when it occurs once; the first to occur wins a tie; 0 for
        fewer than n words (datatrove's find_top_duplicate)."""
        keys = self.keys(n)
        if not len(keys):
            return 0
        counts = np.bincount(keys)
        top = int(counts.max())
        first = int(np.flatnonzero(counts[keys] == top)[0])
        return (self.chars(first, n) + n - 1) * top

    def repeated_chars(self, n: int, stop_above: float = float("inf")) -> int:
        """Characters in n-grams (words joined without spaces) that repeat an earlier one; a
        repeat skips past itself (datatrove's find_all_duplicate: a left-to-right scan that
        remembers the n-grams it visits). Only the n-grams that occurred before are looked at:
        one is a repeat when an earlier occurrence was visited, i.e. lies outside the windows
        that earlier repeats skipped. The scan stops once the count passes `stop_above` (a
        rule's limit: the verdict is known)."""
        if n >= self._no_repeat_from:
            return 0  # a repeated n-gram would hold a repeated shorter one
        keys = self.keys(n)
        order = np.argsort(keys, kind="stable")
        same = keys[order[1:]] == keys[order[:-1]]
        if not same.any():
            self._no_repeat_from = min(self._no_repeat_from, n)
            return 0
        earlier = np.full(len(keys), -1, dtype=np.int64)  # the previous occurrence of each n-gram
        earlier[order[1:][same]] = order[:-1][same]
        previous = earlier.tolist()
        skipped: list[int] = []  # starts of the skipped windows, each n - 1 long
        chars = next_visit = 0
        for start in np.flatnonzero(earlier >= 0).tolist():
            if start < next_visit:
                continue  # inside a skipped window
            seen = previous[start]
            while seen >= 0 and _inside(skipped, seen, n):
                seen = previous[seen]
            if seen >= 0:
                chars += self.chars(start, n)
                if chars > stop_above:
                    break
                skipped.append(start + 1)
                next_visit = start + n
        return chars


def _inside(skipped: list[int], position: int, n: int) -> bool:
    """Whether `position` lies in one of the windows [s, s + n - 1) starting at `skipped` (sorted)."""
    k = bisect.bisect_right(skipped, position) - 1
    return k >= 0 and position < skipped[k] + n - 1


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"word n-grams need n >= 1, got {n}")
