"""MinHash dedup finds the planted near duplicates of the demo corpus and nothing unrelated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from strata.pipeline.dedup.minhash import MinhashSignatures, find_near_duplicates, shingles
from strata.spec.pipeline import MinhashSpec

CORPUS = Path("data/demo/corpus.jsonl")
PLANTED = Path("data/demo/planted.jsonl")


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a, 5), shingles(b, 5)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def corpus() -> tuple[dict[str, str], list[dict[str, str]]]:
    docs = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs[row["id"]] = row["text"]
    planted = [json.loads(line) for line in PLANTED.read_text(encoding="utf-8").splitlines()]
    return docs, planted


def cluster(texts: dict[str, str], spec: MinhashSpec):
    ids = list(texts)
    batch = {
        "text": np.array([texts[i] for i in ids], dtype=object),
        "status": np.array([""] * len(ids), dtype=object),
    }
    signatures = MinhashSignatures(spec)(batch)["signature"]
    return find_near_duplicates(ids, list(range(len(ids))), signatures, spec)


def test_planted_near_duplicates_are_found_and_unrelated_docs_kept(corpus) -> None:
    docs, planted = corpus
    near = [p for p in planted if p["kind"] == "near"]
    # The planted copies, their originals, and 300 other documents that must all be kept.
    involved = {p["id"] for p in near} | {p["original"] for p in near}
    others = [i for i in docs if i not in involved and not i.startswith("planted/")][:300]
    texts = {i: docs[i] for i in [*sorted(involved), *others]}
    result = cluster(texts, MinhashSpec())
    found = {(dup, kept) for dup, kept in result.duplicate_of.items()}
    recall = sum((p["id"], p["original"]) in found or (p["original"], p["id"]) in found for p in near) / len(
        near
    )
    assert recall >= 0.95
    # Every removal is a true near duplicate (word 5-gram Jaccard of at least 0.7).
    assert all(jaccard(texts[d], texts[k]) >= 0.7 for d, k in result.duplicate_of.items())


def test_the_earliest_document_of_a_cluster_is_kept() -> None:
    base = " ".join(f"word{i} sentence about topic {i % 7}" for i in range(80))
    texts = {"c": base + " tail one", "a": base + " tail two", "b": base + " tail three"}
    result = cluster(texts, MinhashSpec())  # order: c=0, a=1, b=2
    assert result.duplicate_of == {"a": "c", "b": "c"}
    assert result.cluster_size_histogram == {3: 1}


def test_below_threshold_pairs_are_not_merged() -> None:
    a = " ".join(f"alpha{i}" for i in range(200))
    b = " ".join(f"alpha{i}" if i % 3 else f"beta{i}" for i in range(200))  # Jaccard far below 0.8
    assert cluster({"a": a, "b": b}, MinhashSpec()).duplicate_of == {}
