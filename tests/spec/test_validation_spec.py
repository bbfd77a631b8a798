"""`data.validation` and `eval`: one source of held-out data, also with pipeline stages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from strata.spec import TrainJob

BASE = {"kind": "train", "name": "j", "output": {"dir": "o"}, "steps": 4}


def job(validation: object, **extra: object) -> TrainJob:
    return TrainJob.model_validate({**BASE, "data": {"shards": "s", "validation": validation}, **extra})


def test_validation_takes_shards_or_a_fraction() -> None:
    assert job({"fraction": 0.05}).data.validation.fraction == 0.05  # type: ignore[union-attr]
    assert job({"shards": "held"}, eval={"every_steps": 2}).eval.every_steps == 2
    for wrong in ({}, {"shards": "held", "fraction": 0.1}):
        with pytest.raises(ValidationError, match="exactly one of shards"):
            job(wrong)
    with pytest.raises(ValidationError, match="less than 1"):
        job({"fraction": 1.0})


def test_pipeline_stages_take_validation() -> None:
    piped = job(
        {"fraction": 0.1}, model={"family": "llama"}, parallel={"pipeline_stages": 2}, zero={"stage": 1}
    )
    assert piped.data.validation is not None and piped.parallel.pipeline_stages == 2
