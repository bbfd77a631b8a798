"""Shard samples: checked on load, and a sample order that depends only on the global sample number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from strata.errors import JobError
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.shards import load_manifest
from strata.train.data import ShardSamples, global_index, validation_loss_sum


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


def write_large_vocab(out: Path, vocab_size: int = 100_000, top: int | None = None) -> Path:
    """Int32 shards of a 100k vocabulary: ids spread over the whole range (above uint16's)."""
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, top or vocab_size, size=200, dtype=np.int64) for _ in range(12)]
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=out,
        tokens_per_shard=800,
        seed=0,
        vocab_size=vocab_size,
        eot_id=0,
    )
    return out


def test_a_100k_vocabulary_trains_from_int32_shards(tmp_path: Path) -> None:
    """The model, its FLOPs and the memory estimate take the shards' real vocabulary."""
    import torch

    from strata.spec.catalog import load_catalog
    from strata.spec.memory import Layout, estimate_memory
    from strata.spec.models import build_model_config
    from strata.spec.train import ModelSpec
    from strata.train.models import build_model

    samples = ShardSamples(write_large_vocab(tmp_path / "shards"), seq_len=16, seed=0)
    assert samples.manifest["dtype"] == "int32" and samples.vocab_size == 100_000
    assert int(samples.tokens.max()) > 65_535
    cfg = build_model_config(
        ModelSpec(family="llama", n_layers=1, d_model=16, n_heads=2, ffn_hidden=32, seq_len=16),
        samples.vocab_size,
    )
    assert cfg.vocab_size == 100_000 and cfg.flops_per_token() == 6 * cfg.matmul_params() + 12 * 16 * 16
    logits = {
        line.item: line.bytes
        for line in estimate_memory(cfg, Layout(), load_catalog().get("p5.48xlarge")).lines
    }
    assert logits["logits"] == 16 * 1 * 100_000 * 4
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(4):
        x, y = samples.batch(step * 4, 4)
        loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(np.log(100_000), abs=0.5) and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_a_token_outside_the_vocabulary_is_refused_naming_the_shard(tmp_path: Path) -> None:
    out = write_large_vocab(tmp_path / "shards")
    manifest = load_manifest(out)
    manifest["vocab_size"] = 90_000  # the tokenizer the manifest names is smaller than its ids
    (out / "manifest.json").write_text(json.dumps(manifest))
    first = next(s for s in manifest["shards"] if s["max_token_id"] >= 90_000)
    with pytest.raises(JobError, match=rf"{first['bin']}: token id {first['max_token_id']} is outside"):
        ShardSamples(out, seq_len=16, seed=0)


def test_manifests_without_max_token_id_are_scanned(tmp_path: Path) -> None:
    out = write_large_vocab(tmp_path / "shards")
    manifest = load_manifest(out)
    recorded = [s.pop("max_token_id") for s in manifest["shards"]]
    assert recorded == [int(np.fromfile(out / s["bin"], dtype="<i4").max()) for s in manifest["shards"]]
    manifest["vocab_size"] = 90_000
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        JobError, match=r"shard_\d{5}\.bin: token id \d+ is outside the model's vocabulary of 90000"
    ):
        ShardSamples(out, seq_len=16, seed=0)
    assert ShardSamples(out, seq_len=16, seed=0, verify=False).num_samples > 0  # workers skip the scan


def test_held_out_documents_are_never_in_the_training_stream(tmp_path: Path) -> None:
    """Every document is a run of one id (its index + 1); the two parts split them, seeded by document index."""
    docs = [np.full(30, i + 1, dtype=np.uint16) for i in range(200)]
    out = tmp_path / "shards"
    write_shards(
        docs=[TokenizedDocument(d, "", "s") for d in docs],
        out_dir=out,
        tokens_per_shard=600,
        seed=0,
        vocab_size=300,
        eot_id=0,
    )
    train = ShardSamples(out, seq_len=16, seed=0, held_out=(0.1, 7))
    held = ShardSamples(out, seq_len=16, seed=5, held_out=(0.1, 7), part="validation")
    train_ids, held_ids = set(np.unique(train.tokens)), set(np.unique(held.tokens))
    assert not train_ids & held_ids and train_ids | held_ids == set(range(1, 201))
    assert 5 <= len(held_ids) <= 40  # about a tenth of 200 documents
    again = ShardSamples(out, seq_len=16, seed=99, held_out=(0.1, 7), part="validation")
    assert set(np.unique(again.tokens)) == held_ids  # the job's seed does not move the held-out set


def test_the_validation_loss_is_the_same_for_any_replica_count(shard_dir: Path) -> None:
    """Replicas split the first N samples in stream order; their sums add up to the same total."""
    import torch

    samples = ShardSamples(shard_dir, seq_len=16, seed=0)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x.double() * 0.001 + y.double() * 0.002).mean()

    expected = sum(float(loss_of(*samples.in_order([i]))) for i in range(10))
    for replicas in (1, 2, 3, 4):
        total = sum(
            float(validation_loss_sum(loss_of, samples, count=10, replica=r, replicas=replicas))
            for r in range(replicas)
        )
        assert total == pytest.approx(expected, rel=1e-12), replicas
