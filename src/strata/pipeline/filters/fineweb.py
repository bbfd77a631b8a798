"""FineWeb's own quality rules (Penedo et al. 2024, section 3.3), as datatrove's
`FineWebQualityFilter` defines them: a line ends in punctuation when its last character is a
sentence terminal (quotes are not), words are spaCy's tokens (word_tokens)."""

from __future__ import annotations

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.text_stats import duplicates, lines
from strata.pipeline.filters.word_tokens import ends_sentence, word_tokens
from strata.spec.quality import FineWebSpec


class FineWebQuality(Filter):
    """Drop list-like and boilerplate documents: few punctuated lines, many short or repeated lines."""

    name = "fineweb"
    spec: FineWebSpec

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        filled = [line for line in lines(text) if line.strip()]
        if not filled:
            return False, "empty"
        if sum(ends_sentence(line) for line in filled) / len(filled) < s.min_line_punct_ratio:
            return False, "line_punct_ratio"
        if sum(len(line) <= s.short_line_chars for line in filled) / len(filled) > s.max_short_line_ratio:
            return False, "short_line_ratio"
        if duplicates(filled)[1] / max(len(text.replace("\n", "")), 1) > s.max_dup_line_char_ratio:
            return False, "dup_line_char_ratio"
        if text.count("\n") / max(len(word_tokens(text)), 1) > s.max_newline_word_ratio:
            return False, "newline_ratio"
        return True, ""
