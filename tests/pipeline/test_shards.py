"""Megatron `.bin/.idx` shards: the index layout byte for byte, a round trip, the manifest's
per-language and per-source counts, and training refusing a corrupt index."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from strata.errors import JobError
from strata.pipeline.shards import TokenizedDocument, index_bytes, load_manifest, read_index, write_shards
from strata.train.data import ShardSamples


def test_index_layout_is_megatrons() -> None:
    data = index_bytes(np.array([3, 5]))
    assert data[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<QBQQ", data[9:34]) == (1, 8, 2, 3)  # version, uint16 code, sequences, docs+1
    assert np.frombuffer(data, "<i4", 2, 34).tolist() == [3, 5]  # lengths
    assert np.frombuffer(data, "<i8", 2, 42).tolist() == [0, 6]  # byte offsets
    assert np.frombuffer(data, "<i8", 3, 58).tolist() == [0, 1, 2]  # document indices
    assert len(data) == 58 + 24


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
        lengths, pointers = read_index(tmp_path / shard["idx"])
        assert len(lengths) == shard["documents"]
        read_back += [tokens[p // 2 : p // 2 + n] for p, n in zip(pointers, lengths, strict=True)]
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


def test_training_refuses_a_corrupt_index(tmp_path: Path) -> None:
    manifest = write_shards(
        docs=make_docs(90), out_dir=tmp_path, tokens_per_shard=1000, seed=5, vocab_size=1000, eot_id=0
    )
    assert ShardSamples(tmp_path, seq_len=16, seed=0).num_samples > 0
    index = tmp_path / manifest["shards"][0]["idx"]
    index.write_bytes(b"not an index")
    with pytest.raises(JobError, match=r"shard_00000.idx: not a Megatron index"):
        ShardSamples(tmp_path, seq_len=16, seed=0)
    index.unlink()
    with pytest.raises(JobError, match=r"index listed in the manifest is missing"):
        ShardSamples(tmp_path, seq_len=16, seed=0)
