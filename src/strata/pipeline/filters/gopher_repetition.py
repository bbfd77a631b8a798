"""Gopher repetition rules (Rae et al. 2021, appendix A, table A1)."""

from __future__ import annotations

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.text_stats import (
    LINE_BREAK,
    PARAGRAPH_BREAK,
    WordNgrams,
    duplicates,
)
from strata.pipeline.filters.word_tokens import word_tokens
from strata.spec.quality import GopherRepetitionSpec


class GopherRepetition(Filter):
    """Drop documents that repeat lines, paragraphs or word n-grams too much."""

    name = "gopher_repetition"
    spec: GopherRepetitionSpec

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        if not text.strip():
            return False, "empty"
        size = len(text)
        for unit, parts, max_frac, max_char_frac in (
            ("para", PARAGRAPH_BREAK.split(text.strip()), s.max_dup_para_frac, s.max_dup_para_char_frac),
            ("line", LINE_BREAK.split(text), s.max_dup_line_frac, s.max_dup_line_char_frac),
        ):
            count, chars = duplicates(parts)
            if count / max(len(parts), 1) > max_frac:
                return False, f"dup_{unit}_frac"
            if chars / size > max_char_frac:
                return False, f"dup_{unit}_char_frac"
        ngrams = WordNgrams(word_tokens(text))
        for n, max_frac in sorted(s.max_top_ngram_char_frac.items()):
            if ngrams.top_chars(n) / size > max_frac:
                return False, f"top_{n}gram"
        for n, max_frac in sorted(s.max_dup_ngram_char_frac.items()):
            if ngrams.repeated_chars(n, stop_above=max_frac * size) / size > max_frac:
                return False, f"dup_{n}gram"
        return True, ""
