"""Validation loss: the same held-out loss on 1 and 2 workers, in metrics.jsonl and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.train.metrics import read_metrics
from tests.integration.helpers import exec_job, train_job, write_synthetic_shards

pytestmark = pytest.mark.integration

VALIDATION = "eval: {every_steps: 4, samples: 8}\n"


def test_validation_loss_is_the_same_on_any_worker_count(
    tmp_path: Path, shards: Path, ray_env: dict[str, str]
) -> None:
    runs = {}
    for workers in (1, 2):
        job = train_job(tmp_path, f"val{workers}", workers=workers, steps=8, extra=VALIDATION)
        job.write_text(job.read_text().replace(f"data: {{shards: {shards}}}",
                       f"data: {{shards: {shards}, validation: {{fraction: 0.2}}}}"))  # fmt: skip
        result = exec_job(job, ray_env)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[workers] = {r["step"]: r["val_loss"] for r in read_metrics(tmp_path / f"val{workers}" / "metrics.jsonl")
                         if "val_loss" in r}  # fmt: skip
    assert list(runs[1]) == [4, 8]
    assert runs[1] == pytest.approx(runs[2], abs=1e-4)
    report = (tmp_path / "val2" / "report" / "training.md").read_text()
    assert f"validation loss, first and last | {runs[2][4]:.4f} → {runs[2][8]:.4f}" in report


def test_a_blend_draws_its_sources_by_weight_and_validates_on_their_held_out_documents(
    tmp_path: Path, shards: Path, ray_env: dict[str, str]
) -> None:
    code = write_synthetic_shards(tmp_path / "code" / "shards")
    job = train_job(tmp_path, "blend", workers=2, steps=8, extra=VALIDATION)
    blend = (f"data: {{sources: [{{shards: {shards}, weight: 3, name: web}}, {{shards: {code}, weight: 1}}], "
             "validation: {fraction: 0.2}}")  # fmt: skip
    job.write_text(job.read_text().replace(f"data: {{shards: {shards}}}", blend))
    result = exec_job(job, ray_env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(tmp_path / "blend" / "metrics.jsonl")
    # 8 steps × 8 samples of 64 tokens: three of every four samples from web.
    assert rows[-1]["tokens_by_source"] == {"web": 48 * 64, "code": 16 * 64}
    assert [r["step"] for r in rows if "val_loss" in r] == [4, 8]
