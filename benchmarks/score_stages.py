"""Docs/s per core of the toxicity and quality-classifier stages against the Gopher quality
filter, on the same corpus in one process; and the toxicity stage's precision and recall on
the hand-labelled set (tests/fixtures/toxicity/README.md) at several thresholds.

Usage:
    taskset -c 0 .venv/bin/python benchmarks/score_stages.py \
        [--corpus data/demo/corpus.jsonl] [--buckets 2000000] [--repeat 3]

The classifier is trained first with `strata classifier train` settings (DCLM's; --buckets
sets its size) on 170 Python documentation sections against 170 Debian changelog entries;
its training and loading are not timed. Each stage sees every document of the corpus as
kept English text; CPU time of this process (time.process_time), best of --repeat.
Prints one JSON line per stage and per threshold.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strata.pipeline.classifier import QualityClassifier, TrainSettings, train_classifier
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.toxicity import ToxicityScore
from strata.spec.quality import ClassifierSpec, GopherQualitySpec, ToxicitySpec

CHANGELOGS = Path("tests/fixtures/classifier/debian_changelogs.jsonl")
LABELLED = Path("tests/fixtures/toxicity/pypi_summaries_labelled.jsonl")


def _batch(texts: list[str]) -> dict[str, Any]:
    n = len(texts)
    return {
        "status": np.full(n, "", dtype=object),
        "text": np.array(texts, dtype=object),
        "language": np.full(n, "en", dtype=object),
    }


def _docs_per_cpu_second(stage: Callable[[dict[str, Any]], Any], texts: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        batch = _batch(texts)
        start = time.process_time()
        stage(batch)
        best = min(best, time.process_time() - start)
    return len(texts) / best


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/demo/corpus.jsonl")
    parser.add_argument("--buckets", type=int, default=TrainSettings().buckets)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.corpus).read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]

    with tempfile.TemporaryDirectory(prefix="strata-bench-") as tmp:
        docs = [r["text"] for r in rows if r.get("source") == "python-docs"][:340:2]
        changelogs = [
            json.loads(line)["text"] for line in CHANGELOGS.read_text(encoding="utf-8").splitlines()
        ]
        model = Path(tmp) / "quality.bin"
        train_classifier(
            _write(Path(tmp) / "pos.jsonl", docs),
            _write(Path(tmp) / "neg.jsonl", changelogs[:340:2]),
            model,
            TrainSettings(buckets=args.buckets),
        )
        stages: dict[str, Callable[[dict[str, Any]], Any]] = {
            "gopher_quality": GopherQuality(GopherQualitySpec()),
            "toxicity": ToxicityScore(ToxicitySpec(enabled=True)),
            "classifier": QualityClassifier(ClassifierSpec(enabled=True, model=str(model))),
        }
        speed = {name: _docs_per_cpu_second(stage, texts, args.repeat) for name, stage in stages.items()}
    for name, docs_s in speed.items():
        ratio = docs_s / speed["gopher_quality"]
        print(
            json.dumps({"stage": name, "docs_per_cpu_s": round(docs_s), "vs_gopher_quality": round(ratio, 2)})
        )

    labelled = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    offensive = np.array([r["offensive"] == 1 for r in labelled])
    scores = ToxicityScore(ToxicitySpec(enabled=True)).scores([r["text"] for r in labelled])
    for threshold in (0.5, 0.7, 0.8, 0.9, 0.95):
        flagged = scores >= threshold
        hits = int((flagged & offensive).sum())
        print(
            json.dumps(
                {
                    "toxicity_threshold": threshold,
                    "precision": round(hits / max(1, int(flagged.sum())), 3),
                    "recall": round(hits / int(offensive.sum()), 3),
                    "flagged": int(flagged.sum()),
                    "offensive": int(offensive.sum()),
                    "of": len(labelled),
                }
            )
        )


if __name__ == "__main__":
    main()
