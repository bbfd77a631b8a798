"""C4 rules (Raffel et al. 2020, section 2.2): remove bad lines, then judge the document.

In the order of datatrove's `C4QualityFilter` (FineWeb's): a line's word length and word
count are taken before its citations are removed; a line that passes the punctuation and
length checks and holds "lorem ipsum" or "{" drops the document even when the javascript or
policy rules would have removed it; sentences are counted per kept line as spaCy's
sentencizer splits them.
"""

from __future__ import annotations

import re

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.text_stats import C4_LINE_END
from strata.pipeline.filters.word_tokens import sentence_count, word_tokens
from strata.spec.quality import C4Spec

CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


class C4Quality(Filter):
    """C4's line cleanup (terminal punctuation, short lines, javascript, policies) and document rules."""

    name = "c4"
    spec: C4Spec

    def _keeps_line(self, line: str, words: list[str]) -> bool:
        s = self.spec
        if any(len(w) > s.max_word_length for w in words):
            return False
        if s.require_terminal_punctuation and (not line.endswith(C4_LINE_END) or line.endswith("...")):
            return False
        if len(words) < s.min_words_per_line:
            return False
        lower = line.lower()
        if (s.drop_lorem_ipsum and "lorem ipsum" in lower) or (s.drop_curly_bracket and "{" in line):
            return True  # kept for keep() to drop the document
        return not (
            (s.remove_javascript_lines and "javascript" in lower)
            or (s.remove_policy_lines and any(p in lower for p in POLICY))
        )

    def rewrite(self, text: str) -> str:
        kept = []
        for raw in text.splitlines():
            words = raw.split()
            line = CITATION.sub("", raw.strip())
            if self._keeps_line(line, words):
                kept.append(line)
        return "\n".join(kept).strip()

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        if not text:
            return False, "no_lines_left"
        if s.drop_lorem_ipsum and "lorem ipsum" in text.lower():
            return False, "lorem_ipsum"
        if s.drop_curly_bracket and "{" in text:
            return False, "curly_bracket"
        if sum(sentence_count(word_tokens(line)) for line in text.split("\n")) < s.min_sentences:
            return False, "too_few_sentences"
        return True, ""
