"""Shard samples: checked on load, and a sample order that depends only on the global sample number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strata.errors import JobError
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.shards import load_manifest
from strata.train.data import ShardSamples, global_index


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 500, size=int(rng.integers(20, 200)), dtype=np.uint16) for _ in range(60)]
    out = tmp_path / "shards"
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=out,
        tokens_per_shard=2048,
        seed=3,
        vocab_size=500,
        eot_id=0,
    )
    return out


def test_manifest_counts_every_token(shard_dir: Path) -> None:
    manifest = load_manifest(shard_dir)
    sizes = sum((shard_dir / s["bin"]).stat().st_size // 2 for s in manifest["shards"])
    assert manifest["total_tokens"] == sizes
    assert manifest["total_documents"] == 60 and len(manifest["shards"]) > 1


def test_batches_are_next_token_pairs(shard_dir: Path) -> None:
    samples = ShardSamples(shard_dir, seq_len=16, seed=0)
    x, y = samples.batch(0, 4)
    assert x.shape == y.shape == (4, 16)
    assert (x[:, 1:] == y[:, :-1]).all()


def test_same_sequence_on_any_number_of_workers(shard_dir: Path) -> None:
    """One worker with micro-batch 8 sees, at each step, what 2 workers with 4 each see together."""
    samples = ShardSamples(shard_dir, seq_len=16, seed=0)
    for step in range(5):
        one = samples.batch(
            global_index(step=step, micro=0, rank=0, accum_steps=1, world_size=1, micro_batch=8), 8
        )[0]
        two = [
            samples.batch(
                global_index(step=step, micro=0, rank=r, accum_steps=1, world_size=2, micro_batch=4), 4
            )[0]
            for r in range(2)
        ]
        assert (one == np.concatenate(two)).all()


def test_order_is_seeded_and_changes_each_epoch(shard_dir: Path) -> None:
    a = ShardSamples(shard_dir, seq_len=16, seed=0)
    b = ShardSamples(shard_dir, seq_len=16, seed=0)
    c = ShardSamples(shard_dir, seq_len=16, seed=1)
    assert (a.batch(0, 8)[0] == b.batch(0, 8)[0]).all()
    assert not (a.batch(0, 8)[0] == c.batch(0, 8)[0]).all()
    n = a.num_samples
    assert not (a.batch(0, 8)[0] == a.batch(n, 8)[0]).all()  # epoch 1 is another permutation


def test_corrupt_shard_is_refused(shard_dir: Path) -> None:
    path = shard_dir / "shard_00000.bin"
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JobError, match=r"shard_00000\.bin: checksum does not match"):
        ShardSamples(shard_dir, seq_len=16, seed=0)


def test_missing_shards_are_refused(tmp_path: Path, shard_dir: Path) -> None:
    with pytest.raises(JobError, match="run the pipeline job"):
        ShardSamples(tmp_path / "nowhere", seq_len=16, seed=0)
    (shard_dir / "shard_00001.bin").unlink()
    with pytest.raises(JobError, match=r"shard_00001\.bin: shard listed in the manifest is missing"):
        ShardSamples(shard_dir, seq_len=16, seed=0)
