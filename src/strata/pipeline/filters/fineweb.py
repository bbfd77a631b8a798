"""FineWeb's own quality rules (Penedo et al. 2024, section 3.3)."""

from __future__ import annotations

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.text_stats import TERMINAL_PUNCTUATION, duplicates, words
from strata.spec.pipeline import FineWebSpec


class FineWebQuality(Filter):
    """Drop list-like and boilerplate documents: few punctuated lines, many short or repeated lines."""

    name = "fineweb"
    spec: FineWebSpec

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return False, "empty"
        if sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines) / len(lines) < s.min_line_punct_ratio:
            return False, "line_punct_ratio"
        if sum(len(line) <= s.short_line_chars for line in lines) / len(lines) > s.max_short_line_ratio:
            return False, "short_line_ratio"
        if duplicates(lines)[1] / max(len(text.replace("\n", "")), 1) > s.max_dup_line_char_ratio:
            return False, "dup_line_char_ratio"
        if text.count("\n") / max(len(words(text)), 1) > s.max_newline_word_ratio:
            return False, "newline_ratio"
        return True, ""
