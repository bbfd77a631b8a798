"""A job resumes only from a checkpoint that can continue it; anything else is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strata.errors import JobError
from strata.spec import TrainJob
from strata.spec.models import GPTConfig
from strata.train.checkpoints import (
    CHECKPOINT_INFO,
    RAY_SNAPSHOT,
    check_resumable,
    checkpoint_info,
    needs_universal,
)

CFG = GPTConfig(vocab_size=256, seq_len=32, n_layers=2, d_model=64, n_heads=4)


def job(workers: int = 2, **overrides) -> TrainJob:
    base = {"kind": "train", "name": "t", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": 20}
    batch = {"micro_batch_size": 4, "global_batch_size": 8}
    return TrainJob.model_validate({**base, "batch": batch, "workers": {"num_workers": workers}, **overrides})


def save(root: Path, step: int, info: dict) -> None:
    directory = root / f"checkpoint_{step:03d}"
    directory.mkdir(parents=True)
    (directory / CHECKPOINT_INFO).write_text(json.dumps(info))


def test_no_checkpoint_starts_fresh(tmp_path: Path) -> None:
    assert check_resumable(job(), CFG, tmp_path / "none") is None


def test_the_newest_checkpoint_of_stage_0_resumes_on_another_worker_count(tmp_path: Path) -> None:
    stage0 = {"zero": {"stage": 0}}
    save(tmp_path, 4, checkpoint_info(job(**stage0), CFG, 4))
    save(tmp_path, 8, checkpoint_info(job(**stage0), CFG, 8))
    found = check_resumable(job(workers=1, **stage0), CFG, tmp_path)  # same global batch: 1 × 4 × 2
    assert found is not None
    directory, saved = found
    assert directory == tmp_path / "checkpoint_008" and saved["step"] == 8 and saved["world_size"] == 2
    assert not needs_universal(saved, 1)  # whole state on every rank: loads as it is


def test_another_model_shape_is_refused_naming_the_field(tmp_path: Path) -> None:
    save(tmp_path, 4, checkpoint_info(job(), CFG, 4))
    wider = GPTConfig(vocab_size=256, seq_len=32, n_layers=2, d_model=128, n_heads=4)
    with pytest.raises(JobError, match="another model \\(d_model: 64 in the checkpoint, 128 in the job\\)"):
        check_resumable(job(), wider, tmp_path)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": 1}, "seed 0"),
        ({"batch": {"micro_batch_size": 4, "global_batch_size": 16}}, "global_batch_size 8"),
        ({"zero": {"stage": 1}}, "zero_stage 2"),
        ({"data": {"shards": "x", "validation": {"fraction": 0.1}}}, r"sample_order weights \[1\.0\],"),
        (
            {"data": {"sources": [{"shards": "a", "weight": 1}, {"shards": "b", "weight": 3}]}},
            r"sample_order weights \[1\.0\]",
        ),
    ],
)
def test_a_run_that_would_continue_differently_is_refused(tmp_path: Path, change: dict, named: str) -> None:
    save(tmp_path, 4, checkpoint_info(job(), CFG, 4))
    with pytest.raises(JobError, match=f"trained with {named}"):
        check_resumable(job(**change), CFG, tmp_path)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_shards_of_another_rank_count_resume_through_a_universal_checkpoint(
    tmp_path: Path, stage: int
) -> None:
    zero = {"zero": {"stage": stage}}
    save(tmp_path, 4, checkpoint_info(job(**zero), CFG, 4))
    for workers, universal in ((2, False), (1, True)):
        found = check_resumable(job(workers=workers, **zero), CFG, tmp_path)
        assert found is not None and needs_universal(found[1], workers) is universal


def test_a_checkpoint_without_its_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / "checkpoint_2026-11-28_00-54-26.904816" / "final").mkdir(parents=True)
    with pytest.raises(JobError, match=r"a checkpoint without strata-checkpoint\.json"):
        check_resumable(job(), CFG, tmp_path)


def test_the_checkpoint_ray_train_resumes_from_is_the_one_checked(tmp_path: Path) -> None:
    """A run that died may leave folders newer than Ray Train's snapshot; Ray resumes from the snapshot's."""
    save(tmp_path, 4, checkpoint_info(job(), CFG, 4))
    save(tmp_path, 8, checkpoint_info(job(**{"seed": 5}), CFG, 8))  # would be refused
    snapshot = {"latest_checkpoint_result": {"checkpoint_dir_name": "checkpoint_004", "metrics": {"step": 4}}}
    (tmp_path / RAY_SNAPSHOT).write_text(json.dumps(snapshot))
    found = check_resumable(job(), CFG, tmp_path)
    assert found is not None and found[0] == tmp_path / "checkpoint_004"
    (tmp_path / RAY_SNAPSHOT).write_text("{")
    with pytest.raises(JobError, match=f"{RAY_SNAPSHOT}: unreadable"):
        check_resumable(job(), CFG, tmp_path)


def test_a_tensor_parallel_checkpoint_resumes_on_its_own_layout_only(tmp_path: Path) -> None:
    from strata.spec.models import build_model_config

    model = {"model": {"family": "llama", "n_heads": 4, "n_kv_heads": 2}, "zero": {"stage": 1}}

    def layout(workers: int, tensor: int) -> TrainJob:
        return job(workers=workers, parallel={"tensor": tensor}, **model)

    cfg = build_model_config(layout(4, 2).model, 256)
    save(tmp_path, 4, checkpoint_info(layout(4, 2), cfg, 4))
    assert check_resumable(layout(4, 2), cfg, tmp_path) is not None
    with pytest.raises(JobError, match="trained with tensor 2, the job asks for 1"):
        check_resumable(layout(2, 1), cfg, tmp_path)
    with pytest.raises(JobError, match="holds the tensor 2 layout of 4 workers and the job asks for 2"):
        check_resumable(layout(2, 2), cfg, tmp_path)
