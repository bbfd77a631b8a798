"""A GPU job that cannot fit the accelerators of the instance type it is submitted to is
refused before any worker starts, with the settings to change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from strata.errors import SpecError
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.spec import TrainJob
from strata.spec.models import build_model_config
from strata.train.launch import check_memory, prepare_training


def job(tmp_path: Path, preset: str, **overrides: Any) -> TrainJob:
    return TrainJob.model_validate({
        "kind": "train", "name": "big", "data": {"shards": str(tmp_path / "shards")}, "steps": 10,
        "model": {"preset": preset, "seq_len": 64}, "output": {"dir": str(tmp_path / "out")},
        "workers": {"num_workers": 8, "use_gpu": True}, "zero": {"stage": 1}, **overrides,
    })  # fmt: skip


def test_a_job_too_large_for_the_instance_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    docs = [np.arange(1, 200, dtype=np.uint16) for _ in range(20)]
    write_shards(docs=[TokenizedDocument(d, "", "s") for d in docs], out_dir=tmp_path / "shards",
                 tokens_per_shard=4096, seed=0, vocab_size=32_000, eot_id=0)  # fmt: skip
    # llama-70b at ZeRO-1 on 8 H100s: 140 GB of bf16 weights on each GPU.
    with pytest.raises(
        SpecError,
        match=r"train job 'big' on p5\.48xlarge: the job needs [\d.]+ GiB per accelerator .* 72\.0 GiB usable",
    ):
        prepare_training(job(tmp_path, "llama-70b"), instance_type="p5.48xlarge")


@pytest.mark.parametrize(
    ("preset", "instance", "overrides"),
    [
        ("llama-1b", "p5.48xlarge", {}),  # fits
        ("llama-70b", "p5.48xlarge", {"workers": {"num_workers": 8}}),  # CPU workers: nothing to check
        ("llama-70b", "cpu", {}),  # an instance type without accelerators
        ("llama-70b", "my-own-type", {}),  # outside the catalog: not known, not refused
    ],
)
def test_what_fits_or_cannot_be_checked_passes(
    tmp_path: Path, preset: str, instance: str, overrides: dict[str, Any]
) -> None:
    train = job(tmp_path, preset, **overrides)
    check_memory(train, build_model_config(train.model, 32_000), instance)
