"""The toxicity and classifier stages in a whole pipeline run on Ray: each worker loads its
own models, drops are counted under the stage with reason `score`, and the scores reach the
rows of the resume checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from strata.pipeline.classifier import TrainSettings, train_classifier
from strata.pipeline.documents import KEPT
from strata.pipeline.registry import DOCUMENT_STAGES, with_defaults
from strata.pipeline.run import run_pipeline
from strata.spec.pipeline import PipelineJob

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]
REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "data" / "demo" / "corpus.jsonl"
CHANGELOGS = REPO / "tests" / "fixtures" / "classifier" / "debian_changelogs.jsonl"
RULE_SETS = ("gopher_repetition", "gopher", "c4", "fineweb")
OFFENSIVE = "A library that takes anything and says 'Fuck you'."


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def _jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    return path


def _kept_by_the_rules(job: PipelineJob, texts: list[str]) -> list[int]:
    """Indices of the texts the job's enabled rule sets keep (English text)."""
    n = len(texts)
    batch = with_defaults({"text": np.array(texts, dtype=object), "status": np.full(n, KEPT, dtype=object)})
    batch["language"] = np.full(n, "en", dtype=object)
    for stage in DOCUMENT_STAGES:
        if stage.section.startswith("quality.") and stage.name in RULE_SETS and stage.enabled(job):
            assert stage.per_row is not None
            batch = stage.per_row(stage.spec(job))(batch)
    return [i for i in range(n) if batch["status"][i] == KEPT]


def test_scores_are_kept_and_drops_counted(tmp_path: Path) -> None:
    docs, changelogs = _texts(DOCS)[:200], _texts(CHANGELOGS)
    model = tmp_path / "quality.bin"
    train_classifier(
        _jsonl(tmp_path / "pos.jsonl", docs[:100]),
        _jsonl(tmp_path / "neg.jsonl", changelogs[:100]),
        model,
        TrainSettings(buckets=20_000),
    )
    held_out = docs[100:160] + changelogs[100:160]
    inputs = _jsonl(tmp_path / "input.jsonl", held_out)  # rewritten below, once planted
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "scored",
            "input": {"paths": [str(inputs)]},
            "quality": {
                "fineweb": {"enabled": False},
                # Documentation is part code: the demo's ratio (README, quality), not Gopher's 0.8.
                "gopher": {"min_alpha_words_ratio": 0.4},
                "toxicity": {"enabled": True},
                "classifier": {"enabled": True, "model": str(model)},
            },
            "tokenizer": {"vocab_size": 1024},
            "shards": {"tokens_per_shard": 4096},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    # The offensive sentence goes into the longest documentation section the rule sets keep.
    longest = max(_kept_by_the_rules(job, held_out[:60]), key=lambda i: len(held_out[i]))
    held_out[longest] += "\n\n" + OFFENSIVE
    _jsonl(inputs, held_out)
    stats = run_pipeline(job)
    assert stats["stages"]["toxicity"]["dropped_by_reason"] == {"score": 1}

    rows = pq.read_table(tmp_path / "out" / "work" / "filtered").to_pylist()
    kept = [r for r in rows if r["status"] == ""]
    assert kept and all(0.5 <= r["quality_score"] <= 1 and r["toxicity_score"] < 0.95 for r in kept)
    dropped = {r["id"]: r for r in rows if r["status"] == "dropped_toxicity_score"}
    assert list(dropped) == [f"d{longest}"] and dropped[f"d{longest}"]["toxicity_score"] >= 0.95
    # Of the documents the classifier scored (those the rules kept), it keeps the documentation
    # (d0-d59) and drops the changelogs, and the stats count its drops.
    scored = [r for r in rows if r["quality_score"] == r["quality_score"]]  # not NaN
    docs = [r["status"] == "" for r in scored if int(r["id"][1:]) < 60 and r["id"] != f"d{longest}"]
    logs = [r["status"] == "dropped_classifier_score" for r in scored if int(r["id"][1:]) >= 60]
    assert len(docs) >= 20 and len(logs) >= 10, (len(docs), len(logs))
    assert sum(docs) >= 0.9 * len(docs) and sum(logs) >= 0.9 * len(logs), (sum(docs), sum(logs))
    assert stats["stages"]["classifier"]["dropped_by_reason"]["score"] == sum(
        r["status"] == "dropped_classifier_score" for r in rows
    )
