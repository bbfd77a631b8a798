"""Dataset blends: samples from several shard directories in the weights' proportions, in an
order that depends only on the global sample number, from one tokenizer only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from strata.errors import JobError
from strata.job_kinds import resolve_paths
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.spec import TrainJob
from strata.spec.load import load_train_job
from strata.train.blend import BLOCK, BlendedSamples, blend_pattern
from strata.train.data import ShardSamples
from strata.train.samples import training_samples, validation_samples

SEQ = 16
# Each source's documents use their own range of token ids, so a row tells its source.
RANGES = {"web": (1, 100), "code": (100, 200), "books": (200, 300)}


def write_source(directory: Path, name: str, *, tokenizer: str = "a" * 64) -> Path:
    low, high = RANGES[name]
    rng = np.random.default_rng(len(name))
    docs = [rng.integers(low, high, size=int(rng.integers(30, 120)), dtype=np.uint16) for _ in range(40)]
    out = directory / name / "shards"
    write_shards(
        docs=[TokenizedDocument(d, "", name) for d in docs],
        out_dir=out,
        tokens_per_shard=2048,
        seed=1,
        vocab_size=300,
        eot_id=0,
        tokenizer={"sha256": tokenizer, "eos_token": "<|endoftext|>", "path": None},
    )
    return out


def source_of(row: np.ndarray[Any, Any]) -> str:
    """The source whose id range holds the row's tokens (end-of-text ids aside)."""
    body = row[row > 0]
    return next(name for name, (low, high) in RANGES.items() if low <= body.min() and body.max() < high)


@pytest.fixture(scope="module")
def blend(tmp_path_factory: pytest.TempPathFactory) -> BlendedSamples:
    root = tmp_path_factory.mktemp("blend")
    sources = [ShardSamples(write_source(root, name), SEQ, seed=0) for name in RANGES]
    return BlendedSamples(sources, [0.7, 0.2, 0.1], list(RANGES))


def test_every_prefix_holds_each_source_within_one_sample_of_its_weight() -> None:
    weights = np.array([0.5, 0.3, 0.15, 0.05])
    _, counts = blend_pattern(weights)
    positions = np.arange(BLOCK + 1)[:, None]
    assert np.abs(counts - positions * weights).max() < 1
    assert counts[-1].tolist() == [5000, 3000, 1500, 500]


def test_rows_come_from_the_sources_in_the_weights_proportions(blend: BlendedSamples) -> None:
    rows = blend.rows(0, 2_000)
    drawn = [source_of(row) for row in rows]
    shares = {name: drawn.count(name) / len(drawn) for name in RANGES}
    assert shares == pytest.approx({"web": 0.7, "code": 0.2, "books": 0.1}, abs=0.01)
    assert blend.drawn_tokens(2_000) == {name: drawn.count(name) * SEQ for name in RANGES}


def test_drawn_tokens_follow_the_weights_over_a_long_run(blend: BlendedSamples) -> None:
    """Many epochs of the small sources (they repeat, in a new order each epoch)."""
    tokens = blend.drawn_tokens(123_457)
    total = sum(tokens.values())
    assert total == 123_457 * SEQ
    assert {n: t / total for n, t in tokens.items()} == pytest.approx(
        {"web": 0.7, "code": 0.2, "books": 0.1}, rel=1e-3
    )


def test_any_sample_is_produced_directly_without_loader_state(
    blend: BlendedSamples, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A fresh blend (a resumed run) gives the same rows for any range, also across blocks."""
    first = BLOCK - 5
    whole = blend.rows(first, 10)
    fresh = BlendedSamples(blend.sources, [0.7, 0.2, 0.1], blend.names)
    assert (fresh.rows(first + 4, 6) == whole[4:]).all()
    assert (np.concatenate([blend.rows(first, 4), blend.rows(first + 4, 6)]) == whole).all()


def test_sources_of_another_tokenizer_are_refused(tmp_path: Path) -> None:
    web = ShardSamples(write_source(tmp_path, "web"), SEQ, seed=0)
    code = ShardSamples(write_source(tmp_path, "code", tokenizer="b" * 64), SEQ, seed=0)
    with pytest.raises(JobError, match=r"data.sources: code was written with another tokenizer than web"):
        BlendedSamples([web, code], [0.5, 0.5], ["web", "code"])


def job(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({
        "kind": "train", "name": "blend", "data": data, "steps": 4, "output": {"dir": "out"},
        "model": {"family": "llama", "n_layers": 1, "d_model": 32, "n_heads": 2, "seq_len": SEQ},
    }))  # fmt: skip
    return path


def test_a_job_blends_its_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative source folders resolve as `data.shards` does (from the working directory)."""
    monkeypatch.chdir(tmp_path)
    for name in ("web", "code"):
        write_source(tmp_path / "runs", name)
    sources = [{"shards": "runs/web/shards", "weight": 3}, {"shards": "runs/code/shards", "weight": 1}]
    path = job(tmp_path, {"sources": sources, "validation": {"fraction": 0.2}})
    loaded = load_train_job(path)
    assert isinstance(loaded, TrainJob)
    resolved = resolve_paths(loaded)
    assert [s.shards for s in resolved.data.blend()] == [
        str(tmp_path / "runs" / n / "shards") for n in ("web", "code")
    ]
    train, held = training_samples(resolved), validation_samples(resolved)
    assert isinstance(train, BlendedSamples) and isinstance(held, BlendedSamples)
    assert train.names == ["web", "code"]
    assert train.drawn_tokens(400) == {"web": 300 * SEQ, "code": 100 * SEQ}
    # Held-out documents are never trained on: no validation row occurs among training rows.
    seen = {row.tobytes() for row in train.rows(0, train.num_samples)}
    assert not any(row.tobytes() in seen for row in held.rows_in_order(range(held.num_samples)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"shards": "a", "sources": [{"shards": "a", "weight": 1}, {"shards": "b", "weight": 1}]},
            "exactly one",
        ),
        ({"sources": [{"shards": "a", "weight": 1}]}, "at least 2"),
        ({"sources": [{"shards": "a", "weight": 1}, {"shards": "b", "weight": 0}]}, "greater than 0"),
        ({"sources": [{"shards": "s3://b/x", "weight": 1}, {"shards": "b", "weight": 1}]}, "local folder"),
        (
            {"sources": [{"shards": "a", "weight": 1e5}, {"shards": "b", "weight": 1}]},
            r"sources\[1\].weight 1.0: under",
        ),
        (
            {
                "sources": [
                    {"shards": "a", "weight": 1, "name": "w"},
                    {"shards": "b", "weight": 1, "name": "w"},
                ]
            },
            "names must differ",
        ),
    ],
)
def test_bad_blends_are_refused_naming_the_key(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message) as raised:
        load_train_job(job(tmp_path, data))
    assert "data" in str(raised.value)
