"""The toxicity stage on real text: offensive PyPI package summaries (hand-labelled, see
tests/fixtures/toxicity/README.md) are scored and dropped at the default threshold, the
Python documentation is not, and the score is kept with each document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strata.pipeline.toxicity import ToxicityScore, sentences
from strata.spec.quality import ToxicitySpec

REPO = Path(__file__).resolve().parents[2]
LABELLED = REPO / "tests" / "fixtures" / "toxicity" / "pypi_summaries_labelled.jsonl"
DOCS = REPO / "data" / "demo" / "corpus.jsonl"


@pytest.fixture(scope="module")
def stage() -> ToxicityScore:
    return ToxicityScore(ToxicitySpec(enabled=True))


def test_precision_and_recall_on_the_labelled_set_at_the_default_threshold(stage: ToxicityScore) -> None:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    offensive = np.array([r["offensive"] == 1 for r in rows])
    flagged = stage.scores([r["text"] for r in rows]) >= ToxicitySpec().threshold
    precision = (flagged & offensive).sum() / flagged.sum()
    recall = (flagged & offensive).sum() / offensive.sum()
    # Measured 0.62 and 0.22 (docs/benchmarks.md): the model misses vulgar words inside names.
    assert precision >= 0.6 and recall >= 0.2


def test_the_python_documentation_passes(stage: ToxicityScore) -> None:
    texts = [json.loads(line)["text"] for line in DOCS.read_text(encoding="utf-8").splitlines()[:500]]
    assert stage.scores(texts).max() < ToxicitySpec().threshold


def test_stage_drops_offensive_documents_and_keeps_the_score(stage: ToxicityScore) -> None:
    docs = [json.loads(line)["text"] for line in DOCS.read_text(encoding="utf-8").splitlines()[:2]]
    offensive = docs[0] + "\n\nA library that takes anything and says 'Fuck you'"
    batch = {
        "status": np.array(["", "", "dropped_gopher_too_few_words", ""], object),
        "text": np.array([offensive, docs[1], "Your code is shit.", "Your code is shit."], object),
        "language": np.array(["en", "en", "en", "fr"], object),
        "toxicity_score": np.full(4, np.nan),
    }
    out = stage(batch)
    assert list(out["status"]) == ["dropped_toxicity_score", "", "dropped_gopher_too_few_words", ""]
    assert out["toxicity_score"][0] >= 0.95 > out["toxicity_score"][1]
    # Rows dropped earlier, or of a language the spec does not list (English by default), are not scored.
    assert np.isnan(out["toxicity_score"][2]) and np.isnan(out["toxicity_score"][3])


def test_sentences_cut_lines_and_sentence_ends() -> None:
    assert sentences("One. Two!  Three?\n\nfour\n  \n") == ["One.", "Two!", "Three?", "four"]


ONE_REGEX = re.compile(r"(?<=[.!?])\s+|\n+")  # the definition `sentences` computes faster


@given(st.text(alphabet=st.sampled_from("ab .!?\n\t\u2028\u3000x"), max_size=60))
def test_sentences_are_the_one_regex_split(text: str) -> None:
    assert sentences(text) == [s for s in (p.strip() for p in ONE_REGEX.split(text)) if s]


def test_batched_tfidf_is_the_vectorizers_matrix(stage: ToxicityScore) -> None:
    rows = [json.loads(line)["text"] for line in DOCS.read_text(encoding="utf-8").splitlines()[:300]]
    labelled = [json.loads(line)["text"] for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    flat = [s for t in rows + labelled for s in sentences(t)] + ["ÉCOLE Straße x_y a b", "--", "İstanbul"]
    assert stage.batched
    batched, reference = stage.tfidf(flat), stage.vectorizer.transform(flat)
    assert batched.shape == reference.shape and abs(batched - reference).max() < 1e-12
    # A sentence that holds the separator word goes through the vectorizer itself.
    odd = [*flat[:5], "a stratasentenceseparator here"]
    assert abs(stage.tfidf(odd) - stage.vectorizer.transform(odd)).max() == 0
