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

The package's TfidfVectorizer tokenizes each sentence in its own Python calls, which cost
three quarters of the stage. `tfidf` computes the same matrix for all the sentences of a
batch at once (tested equal to the vectorizer's `transform`): it lower-cases and
tokenizes them as one string with a separator word between sentences, looks the tokens up
in the fitted vocabulary (which holds no stop word: the vectorizer dropped them before
fitting), counts them per sentence, weighs them by the fitted idf and normalizes each row
to unit length, the vectorizer's `norm="l2"`. (Nothing here imports scikit-learn, whose
import costs every Ray worker 0.4 s; the package's model brings it when the stage runs.)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import scipy.sparse

from strata.pipeline.documents import Batch, score_kept_rows
from strata.spec.quality import ToxicitySpec

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # whitespace after sentence-ending punctuation
SEPARATOR = "stratasentenceseparator"  # a token no sentence holds (checked), between sentences
# The vectorizer settings `tfidf` reproduces. Its token pattern, `(?u)\b\w\w+\b`, finds the
# maximal runs of two or more word characters, as `\w\w+` does (scanning left to right, a match
# takes a whole run), 1.4x faster here.
TFIDF_SETTINGS = {
    "analyzer": "word",
    "lowercase": True,
    "preprocessor": None,
    "tokenizer": None,
    "strip_accents": None,
    "ngram_range": (1, 1),
    "token_pattern": r"(?u)\b\w\w+\b",
    "norm": "l2",
    "use_idf": True,
    "sublinear_tf": False,
    "binary": False,
}
WORD_RUN = re.compile(r"\w\w+")


def sentences(text: str) -> list[str]:
    """The non-blank lines of a text, each cut after sentence-ending punctuation, stripped.

    Lines are split by `str.split` and only lines with `.`, `!` or `?` go through the regex:
    1.8x faster than one regex over the text, `(?<=[.!?])\\s+|\\n+`, with the same result.
    """
    parts: list[str] = []
    for line in text.split("\n"):
        if "." in line or "!" in line or "?" in line:
            parts.extend(SENTENCE_END.split(line))
        else:
            parts.append(line)
    return [s for s in (part.strip() for part in parts) if s]


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
        settings = self.vectorizer.get_params()
        self.batched = all(settings[key] == value for key, value in TFIDF_SETTINGS.items())

    def scores(self, texts: list[str]) -> np.ndarray:
        """Each text's toxicity score: the highest offensive probability among its sentences (0 without one)."""
        parts = [sentences(t) for t in texts]
        unique: dict[str, int] = {}  # a sentence repeated in the batch (boilerplate) is scored once
        where = np.fromiter((unique.setdefault(s, len(unique)) for p in parts for s in p), dtype=np.int64)
        out = np.zeros(len(texts), dtype=np.float64)
        if not unique:
            return out
        probs = self.model.predict_proba(self.tfidf(list(unique)))[:, 1][where]
        start = 0
        for i, p in enumerate(parts):
            if p:
                out[i] = float(probs[start : start + len(p)].max())
            start += len(p)
        return out

    def tfidf(self, flat: list[str]) -> Any:
        """The vectorizer's TF-IDF matrix of `flat` (CSR, one row per sentence), computed in one pass
        (the vectorizer's own `transform` when its settings differ from TFIDF_SETTINGS or a
        sentence holds SEPARATOR)."""
        joined = f" {SEPARATOR} ".join(flat).lower()
        if not self.batched or joined.count(SEPARATOR) != len(flat) - 1:
            return self.vectorizer.transform(flat)
        vocabulary = self.vectorizer.vocabulary_
        ids = np.fromiter(
            (vocabulary.get(t, -1) if t != SEPARATOR else -2 for t in WORD_RUN.findall(joined)),
            dtype=np.int64,
        )
        row = np.cumsum(ids == -2)
        known = ids >= 0
        counts = scipy.sparse.csr_matrix(
            (np.ones(int(known.sum())), (row[known], ids[known])), shape=(len(flat), len(vocabulary))
        )
        weighted = counts.multiply(self.vectorizer.idf_).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1  # an empty row stays empty, as scikit-learn's normalize leaves it
        return scipy.sparse.diags(1 / norms) @ weighted

    def __call__(self, batch: Batch) -> Batch:
        return score_kept_rows(
            batch,
            column="toxicity_score",
            languages=self.languages,
            score=self.scores,
            drop=lambda scores: scores >= self.spec.threshold,
            reason="dropped_toxicity_score",
        )
