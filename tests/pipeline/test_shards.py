"""The pipeline's shards: every document once after shuffling, the manifest's per-language and
per-source counts, and no stale shard after a shorter rewrite (the format: tests/test_shards.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.shards import load_manifest, read_index


def make_docs(n: int) -> list[TokenizedDocument]:
    rng = np.random.default_rng(1)
    return [
        TokenizedDocument(
            rng.integers(1, 1000, size=int(rng.integers(5, 80)), dtype=np.uint16),
            ["en", "fr"][i % 2],
            ["web", "books", "code"][i % 3],
        )
        for i in range(n)
    ]


def test_round_trip_every_document(tmp_path: Path) -> None:
    docs = make_docs(90)
    manifest = write_shards(
        docs=docs, out_dir=tmp_path, tokens_per_shard=1000, seed=5, vocab_size=1000, eot_id=0
    )
    read_back = []
    for shard in manifest["shards"]:
        tokens = np.fromfile(tmp_path / shard["bin"], dtype="<u2")
        index = read_index(tmp_path / shard["idx"])
        assert len(index.lengths) == shard["documents"]
        read_back += [tokens[p // 2 : p // 2 + n] for p, n in zip(index.pointers, index.lengths, strict=True)]
    assert sorted(map(bytes, read_back)) == sorted(bytes(d.tokens) for d in docs)
    assert manifest["tokens_by_language"] == {
        lang: sum(len(d.tokens) for d in docs if d.language == lang) for lang in ("en", "fr")
    }
    assert sum(manifest["tokens_by_source"].values()) == manifest["total_tokens"]
    assert load_manifest(tmp_path) == manifest


def test_rewriting_with_fewer_shards_removes_the_stale_ones(tmp_path: Path) -> None:
    write_shards(
        docs=make_docs(90), out_dir=tmp_path, tokens_per_shard=500, seed=5, vocab_size=1000, eot_id=0
    )
    manifest = write_shards(
        docs=make_docs(9), out_dir=tmp_path, tokens_per_shard=500, seed=5, vocab_size=1000, eot_id=0
    )
    listed = {s["bin"] for s in manifest["shards"]} | {s["idx"] for s in manifest["shards"]}
    assert {p.name for p in tmp_path.glob("shard_*")} == listed
