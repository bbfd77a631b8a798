"""Language ID with py3langid, whose model ships inside the package (nothing is downloaded).

Adds `language` (ISO 639-1) and `language_score` (normalized probability) to every kept
row, then drops rows whose language is not in the job's list (`dropped_language_not_listed`)
or whose score is under the threshold for that language (`dropped_language_low_score`).
"""

from __future__ import annotations

import functools

import numpy as np
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.pipeline import LanguageSpec

# Enough text to decide; the model's cost grows with length and the tail changes nothing.
CHARS_TO_CLASSIFY = 4000


@functools.cache
def _identifier() -> LanguageIdentifier:
    """py3langid's model, loaded once per process (0.5 s; 69 MB pickled, so never shipped)."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class IdentifyLanguage:
    """Per-row stage: tag, then keep by language and score."""

    def __init__(self, spec: LanguageSpec) -> None:
        self.spec = spec
        self.keep = frozenset(spec.keep)

    def classify(self, text: str) -> tuple[str, float]:
        """The most likely language and its probability."""
        language, score = _identifier().classify(" ".join(text[:CHARS_TO_CLASSIFY].split()))
        return str(language), float(score)

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        languages = np.full(len(status), "", dtype=object)
        scores = np.zeros(len(status), dtype=np.float64)
        for i in np.flatnonzero(kept_mask(batch)):
            languages[i], scores[i] = self.classify(str(batch["text"][i]))
            if self.keep and languages[i] not in self.keep:
                status[i] = "dropped_language_not_listed"
            elif scores[i] < self.spec.min_score_by_language.get(languages[i], self.spec.min_score):
                status[i] = "dropped_language_low_score"
        batch["status"], batch["language"], batch["language_score"] = status, languages, scores
        return batch
