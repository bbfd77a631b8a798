"""The DeepSpeed config follows the job: batch sizes, ZeRO stage, precision, schedule."""

from __future__ import annotations

from strata.spec import TrainJob
from strata.train.deepspeed_config import build_ds_config


def job(**overrides) -> TrainJob:
    base = {"kind": "train", "name": "t", "data": {"shards": "x"}, "steps": 100, "output": {"dir": "o"}}
    return TrainJob.model_validate({**base, **overrides})


def test_batch_sizes_multiply_across_workers() -> None:
    config = build_ds_config(job(batch={"micro_batch_size": 4, "grad_accum_steps": 3}), world_size=8)
    assert config["train_batch_size"] == 4 * 3 * 8
    assert config["gradient_accumulation_steps"] == 3


def test_stage_3_partitions_even_small_parameters() -> None:
    assert build_ds_config(job(zero={"stage": 3}), 2)["zero_optimization"] == {
        "stage": 3,
        "stage3_param_persistence_threshold": 0,
    }
    assert build_ds_config(job(zero={"stage": 1}), 2)["zero_optimization"] == {"stage": 1}


def test_no_warmup_starts_at_the_peak_lr() -> None:
    params = build_ds_config(job(optimizer={"warmup_steps": 0}), 2)["scheduler"]["params"]
    assert params["warmup_num_steps"] == 1 and params["warmup_min_ratio"] == 1.0


def test_bf16_only_on_gpu_and_schedule_from_the_job() -> None:
    assert build_ds_config(job(), 2)["bf16"] == {"enabled": False}
    config = build_ds_config(job(workers={"use_gpu": True}, optimizer={"warmup_steps": 7}), 2)
    assert config["bf16"] == {"enabled": True}
    assert config["scheduler"]["params"]["warmup_num_steps"] == 7
    assert config["scheduler"]["params"]["total_num_steps"] == 100
