"""The scaling sweep end to end at a tiny scale: the shared pipeline run's shards, 9 training runs
on Ray, a fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import exec_job

pytestmark = pytest.mark.integration


def test_sweep_trains_the_grid_and_fits_a_law(
    tmp_path: Path, pipeline_run: Path, ray_env: dict[str, str]
) -> None:
    sweep = yaml.safe_load(Path("jobs/scaling-sweep.yaml").read_text())
    sweep["data"]["shards"] = str(pipeline_run / "first" / "shards")
    sweep["output"]["dir"] = str(tmp_path / "sweep")
    sweep["bootstrap"] = 10
    job = tmp_path / "sweep.yaml"
    job.write_text(yaml.safe_dump(sweep))
    result = exec_job(job, ray_env)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = [json.loads(line) for line in (tmp_path / "sweep" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == len(sweep["models"]) * len(sweep["tokens"]) == 9
    by_model: dict[int, list[float]] = {}
    for row in sorted(rows, key=lambda r: r["tokens"]):
        by_model.setdefault(row["params"], []).append(row["final_loss"])
    # More tokens, lower loss, for every model; a bigger model is better at the largest budget.
    assert all(losses[-1] < losses[0] for losses in by_model.values())
    largest_budget = [losses[-1] for _, losses in sorted(by_model.items())]
    assert largest_budget[-1] < largest_budget[0]

    # The law is fitted on each run's validation loss (jobs/scaling-sweep.yaml holds out 10%
    # of the documents): more tokens, lower held-out loss, for every model.
    by_model_validation: dict[int, list[float]] = {}
    for row in sorted(rows, key=lambda r: r["tokens"]):
        by_model_validation.setdefault(row["params"], []).append(row["validation_loss"])
    assert all(losses[-1] < losses[0] for losses in by_model_validation.values())

    fit = json.loads((tmp_path / "sweep" / "fit.json").read_text())
    assert fit["fitted_on"] == "validation_loss"
    assert set(fit["constants"]) == {"E", "A", "B", "alpha", "beta"}
    assert set(fit["intervals_95"]) == set(fit["constants"])
    assert fit["runs"] == 9
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
