"""The DeepSpeed config follows the job: batch sizes, ZeRO stage, precision."""

from __future__ import annotations

import pytest

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


def test_an_offloaded_optimizer_steps_on_the_cpu_with_torch_adamw() -> None:
    config = build_ds_config(job(zero={"stage": 2, "offload_optimizer": True}, workers={"use_gpu": True}), 2)
    assert config["zero_optimization"]["offload_optimizer"] == {"device": "cpu", "pin_memory": True}
    assert config["zero_force_ds_cpu_optimizer"] is False
    assert "fused" not in config["optimizer"]["params"]
    with pytest.raises(ValueError, match="offload_optimizer needs ZeRO stage 1, 2 or 3"):
        job(zero={"stage": 0, "offload_optimizer": True})


def test_precision_applies_on_gpu_only() -> None:
    cpu = build_ds_config(job(precision="autocast"), 2)
    assert not cpu["bf16"]["enabled"] and not cpu["torch_autocast"]["enabled"]
    assert "fused" not in cpu["optimizer"]["params"]  # fp32 on CPU, torch's default AdamW
    bf16 = build_ds_config(job(workers={"use_gpu": True}), 2)
    assert bf16["bf16"]["enabled"] and not bf16["torch_autocast"]["enabled"]
    autocast = build_ds_config(job(workers={"use_gpu": True}, precision="autocast"), 2)
    assert not autocast["bf16"]["enabled"]
    assert autocast["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"}
    assert autocast["optimizer"]["params"]["fused"] is True
