"""Gopher quality rules (Rae et al. 2021, appendix A), thresholds from the job file.

Words are counted as datatrove's `GopherQualityFilter` counts them, FineWeb's definition
(strata.pipeline.filters.word_tokens): punctuation tokens are words for the ratios (hash,
ellipsis, alphabetic words), not for the word count and mean length; stop words count once
each, case-sensitive; bullet and ellipsis shares are over all lines, blank ones included.
"""

from __future__ import annotations

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.word_tokens import is_symbol, word_tokens
from strata.spec.quality import GopherQualitySpec

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "-")
ELLIPSES = ("...", "…")


class GopherQuality(Filter):
    """Drop documents whose word statistics mark them as not natural prose; a document without
    words is dropped as `no_words` even when `min_words` is 0."""

    name = "gopher"
    spec: GopherQualitySpec

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        tokens = word_tokens(text)
        words = [t for t in tokens if not is_symbol(t)]
        n_words = len(words)
        if n_words < s.min_words:
            return False, "too_few_words"
        if n_words == 0:  # min_words 0: the word statistics below are undefined, not prose
            return False, "no_words"
        if n_words > s.max_words:
            return False, "too_many_words"
        mean_len = sum(len(w) for w in words) / n_words
        if not s.min_mean_word_length <= mean_len <= s.max_mean_word_length:
            return False, "mean_word_length"
        if text.count("#") / len(tokens) > s.max_symbol_word_ratio:
            return False, "hash_ratio"
        if sum(text.count(e) for e in ELLIPSES) / len(tokens) > s.max_symbol_word_ratio:
            return False, "ellipsis_ratio"
        lines = text.splitlines()  # not empty: there are words
        if sum(line.lstrip().startswith(BULLETS) for line in lines) / len(lines) > s.max_bullet_lines_ratio:
            return False, "bullet_lines"
        if sum(line.rstrip().endswith(ELLIPSES) for line in lines) / len(lines) > s.max_ellipsis_lines_ratio:
            return False, "ellipsis_lines"
        if (
            sum(t.isalpha() or any(c.isalpha() for c in t) for t in tokens) / len(tokens)
            < s.min_alpha_words_ratio
        ):
            return False, "alpha_words"
        if len(STOP_WORDS.intersection(tokens)) < s.min_stop_words:
            return False, "stop_words"
        return True, ""
