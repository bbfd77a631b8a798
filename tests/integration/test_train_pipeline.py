"""Pipeline parallelism: a Llama cut into two DeepSpeed pipeline stages on two Ray Train
workers trains like the whole model on one worker, and its run resumes from its checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from strata.train.metrics import read_metrics
from tests.integration.helpers import STEPS, exec_job, train_job

pytestmark = pytest.mark.integration
PIPELINE = "parallel: {pipeline_stages: 2}\n"


def validated(job: Path, shards: Path) -> Path:
    """The job with a validation loss every 12 steps over 10 of the 20% held-out documents' samples."""
    text = job.read_text().replace(
        f"data: {{shards: {shards}}}", f"data: {{shards: {shards}, validation: {{fraction: 0.2}}}}"
    )
    job.write_text(text + "eval: {every_steps: 12, samples: 10}\n")
    return job


def test_two_pipeline_stages_train_like_the_whole_model(
    tmp_path: Path, shards: Path, ray_env: dict[str, str]
) -> None:
    whole = exec_job(validated(train_job(tmp_path, "whole", zero=0, workers=1), shards), ray_env)  # batch 8
    assert whole.returncode == 0, whole.stderr[-3000:]
    piped = exec_job(
        validated(train_job(tmp_path, "piped", zero=1, workers=2, extra=PIPELINE), shards), ray_env
    )
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert (
        "stage=1 layers=2" in piped.stdout + piped.stderr
    )  # a decoder layer and the head on the second stage

    expected = [r["loss"] for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    rows = read_metrics(tmp_path / "piped" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in rows] == pytest.approx(expected, abs=1e-5)
    assert expected[-1] < expected[0] - 1  # it learned
    assert len(rows[-1]["memory_mib_per_rank"]) == 2
    # The validation loss over the same 10 held-out samples (not a multiple of the micro-batch).
    held_out = {
        r["step"]: r["val_loss"]
        for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")
        if "val_loss" in r
    }
    assert list(held_out) == [12, 24]
    assert {r["step"]: r["val_loss"] for r in rows if "val_loss" in r} == pytest.approx(held_out, abs=1e-5)

    # model.pt holds the whole model under Llama's names, gathered from both stages.
    whole_weights = torch.load(tmp_path / "whole" / "model.pt")
    piped_weights = torch.load(tmp_path / "piped" / "model.pt")
    assert piped_weights.keys() == whole_weights.keys()
    for name, weight in whole_weights.items():
        torch.testing.assert_close(piped_weights[name], weight, atol=1e-4, rtol=1e-4, msg=name)

    # Resubmitted with more steps, the pipelined run loads its stages' checkpoint and goes on.
    longer = exec_job(
        validated(train_job(tmp_path, "piped", zero=1, workers=2, steps=STEPS + 4, extra=PIPELINE), shards),
        ray_env,
    )
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert re.search(rf"resumed from the checkpoint of step {STEPS}\b", longer.stderr), longer.stderr[-3000:]
    continued = read_metrics(tmp_path / "piped" / "metrics.jsonl")
    assert continued[:STEPS] == rows and [r["step"] for r in continued[STEPS:]] == list(
        range(STEPS + 1, STEPS + 5)
    )

    # The same checkpoint on another worker count is refused before anything runs.
    refused = exec_job(
        validated(train_job(tmp_path, "piped", zero=1, workers=4, steps=STEPS + 8, extra=PIPELINE), shards),
        ray_env,
    )
    assert refused.returncode != 0
    assert "a pipelined run resumes on the same number of workers" in refused.stderr
