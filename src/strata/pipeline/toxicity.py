"""Toxicity: each sentence's probability of offensive language from alt-profanity-check,
whose model ships inside the package (nothing is downloaded).

alt-profanity-check 1.9.1 (MIT; github.com/dimitrismistriotis/alt-profanity-check) is a
TF-IDF over English words (stop words removed) and a calibrated linear SVM, trained on
labelled offensive and hateful tweets and toxic Wikipedia comments (its README). It knows
English only: other languages pass unscored unless the job lists them.

A document's `toxicity_score` is the highest probability among its sentences (lines, cut
after `.`, `!` or `?`), so one abusive sentence in a long page counts as much as a short
abusive post; documents whose score reaches the threshold are dropped
(`dropped_toxicity_score`). Precision and recall on a hand-labelled real set are in
docs/benchmarks.md.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from strata.pipeline.documents import Batch, score_kept_rows
from strata.spec.quality import ToxicitySpec

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    """The non-blank lines of a text, each cut after sentence-ending punctuation."""
    return [s for s in (part.strip() for part in SENTENCE_END.split(text)) if s]


class ToxicityScore:
    """Per-row stage: score kept rows of the spec's languages, drop toxic ones (the model is
    loaded once per process, when profanity_check is first imported).

    Rows it does not score (dropped earlier, or of another language) keep `toxicity_score` NaN.
    """

    def __init__(self, spec: ToxicitySpec) -> None:
        from profanity_check import profanity_check  # loads the packaged model (~1 MB) on import

        self.spec = spec
        self.languages = frozenset(spec.languages)
        self.vectorizer: Any = profanity_check.vectorizer
        self.model: Any = profanity_check.model

    def scores(self, texts: list[str]) -> np.ndarray:
        """Each text's toxicity score: the highest offensive probability among its sentences (0 without one)."""
        parts = [sentences(t) for t in texts]
        flat = [s for p in parts for s in p]
        out = np.zeros(len(texts), dtype=np.float64)
        if not flat:
            return out
        probs = self.model.predict_proba(self.vectorizer.transform(flat))[:, 1]
        start = 0
        for i, p in enumerate(parts):
            if p:
                out[i] = float(probs[start : start + len(p)].max())
            start += len(p)
        return out

    def __call__(self, batch: Batch) -> Batch:
        return score_kept_rows(
            batch,
            column="toxicity_score",
            languages=self.languages,
            score=self.scores,
            drop=lambda scores: scores >= self.spec.threshold,
            reason="dropped_toxicity_score",
        )
