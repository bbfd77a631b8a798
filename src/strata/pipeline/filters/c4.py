"""C4 rules (Raffel et al. 2020, section 2.2): remove bad lines, then judge the document."""

from __future__ import annotations

import re

from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.text_stats import TERMINAL_PUNCTUATION, lines
from strata.spec.pipeline import C4Spec

CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]", re.IGNORECASE)
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
SENTENCE_END = re.compile(r"[.!?。！？]+(?=\s|$)")


class C4Quality(Filter):
    """C4's line cleanup (terminal punctuation, short lines, javascript, policies) and document rules."""

    name = "c4"
    spec: C4Spec

    def _keeps_line(self, line: str) -> bool:
        s = self.spec
        words = line.split()
        lower = line.lower()
        return not (
            (
                s.require_terminal_punctuation
                and (not line.endswith(TERMINAL_PUNCTUATION) or line.endswith("..."))
            )
            or len(words) < s.min_words_per_line
            or any(len(w) > s.max_word_length for w in words)
            or (s.remove_javascript_lines and "javascript" in lower)
            or (s.remove_policy_lines and any(p in lower for p in POLICY))
        )

    def rewrite(self, text: str) -> str:
        cleaned = (CITATION.sub("", line).strip() for line in lines(text))
        return "\n".join(line for line in cleaned if line and self._keeps_line(line))

    def keep(self, text: str) -> tuple[bool, str]:
        s = self.spec
        if not text:
            return False, "no_lines_left"
        if s.drop_lorem_ipsum and "lorem ipsum" in text.lower():
            return False, "lorem_ipsum"
        if s.drop_curly_bracket and "{" in text:
            return False, "curly_bracket"
        if len(SENTENCE_END.findall(text)) < s.min_sentences:
            return False, "too_few_sentences"
        return True, ""
