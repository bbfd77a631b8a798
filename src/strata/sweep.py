"""Run a scaling sweep on Ray: train every (model, token budget) pair, then fit L(N, D).

Each run is a Ray task in a fresh worker process (one CPU, or one GPU) that trains
with Strata's model, DeepSpeed config and step as a world of one. With `data.validation`
the law is fitted on each run's validation loss after its last step (`eval.samples`
held-out samples, the same for every run, never trained on); without, on its final
training loss, the mean over the last tenth of its steps (samples are drawn without
repetition within an epoch, so this tracks held-out loss while runs stay under one
epoch). `fit.json` says which (`fitted_on`). Each result also gives the run's model FLOP/s and, given the accelerator's peak, its
MFU (strata.spec.models.mfu). Outputs under `output.dir`: results.jsonl, fit.json and sweep.png.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import ray

from strata.errors import JobError
from strata.scaling.fit import Fit, fit_law
from strata.scaling.laws import ChinchillaLaw
from strata.spec.models import mfu
from strata.spec.sweep import SweepJob
from strata.spec.train import TrainJob
from strata.train.launch import peak_flops_per_worker
from strata.train.samples import data_samples

logger = logging.getLogger(__name__)


def build_runs(job: SweepJob) -> list[TrainJob]:
    """One training job per (model, token budget), steps rounded up to cover the budget."""
    tokens_per_step = job.batch.micro_batch_size * job.batch.grad_accum_steps * job.seq_len
    runs = []
    for model in job.models:
        for tokens in job.tokens:
            runs.append(
                TrainJob(
                    kind="train",
                    name=f"{job.name}-L{model.n_layers}-d{model.d_model}-t{tokens}",
                    seed=job.seed,
                    data=job.data,
                    model={**model.model_dump(), "seq_len": job.seq_len},
                    optimizer=job.optimizer,
                    batch=job.batch,
                    steps=max(1, math.ceil(tokens / tokens_per_step)),
                    workers={"num_workers": 1, "use_gpu": job.use_gpu},
                    eval=job.eval,
                    output={"dir": str(Path(job.output.dir) / "runs")},
                )
            )
    return runs


def _train_remote(run: dict[str, Any], peak_flops_per_second: float | None) -> dict[str, Any]:
    from strata.train.single import train_single_process

    job = TrainJob.model_validate(run)
    result = train_single_process(job)
    tail = result["losses"][-max(1, len(result["losses"]) // 10) :]
    tokens = job.steps * job.batch.micro_batch_size * job.batch.grad_accum_steps * job.model.seq_len
    return {
        "name": job.name,
        **job.model.model_dump(),
        "params": result["params"],
        "tokens": tokens,
        "steps": job.steps,
        "final_loss": float(np.mean(tail)),
        "validation_loss": result["validation_loss"],
        "seconds": round(result["seconds"], 2),
        "model_flops_per_second": result["flops_per_token"] * tokens / result["seconds"],
        "mfu": (
            mfu(result["flops_per_token"], tokens / result["seconds"], peak_flops_per_second)
            if peak_flops_per_second
            else None
        ),
    }


def prepare_sweep(job: SweepJob, *, instance_type: str | None = None) -> Callable[[], dict[str, Any]]:
    """Check the shards (present, intact, at least one sample of `seq_len`), writing nothing;
    return the function that runs the sweep. `instance_type` (a catalog row) gives one run's
    accelerator peak for MFU (none on CPUs)."""
    samples = data_samples(job.data, job.seq_len, job.seed)
    runs = build_runs(job)
    largest = max(r.steps * r.batch.micro_batch_size * r.batch.grad_accum_steps for r in runs)
    if largest > samples.num_samples:
        logger.warning(
            "the largest budget reads %d samples of %d: runs repeat data", largest, samples.num_samples
        )
    return functools.partial(_run_sweep, job, runs, peak_flops_per_worker(runs[0], instance_type))


def _run_sweep(job: SweepJob, runs: list[TrainJob], peak_flops_per_second: float | None) -> dict[str, Any]:
    """Train the grid on the connected Ray cluster, fit the law, write results, fit and plot.
    `peak_flops_per_second`: one run's accelerator peak (for MFU); None on CPUs."""
    out = Path(job.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    train = ray.remote(num_cpus=0 if job.use_gpu else 1, num_gpus=1 if job.use_gpu else 0, max_calls=1)(
        _train_remote
    )
    pending = {train.remote(r.model_dump(mode="json"), peak_flops_per_second): r.name for r in runs}
    results = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        try:
            result = ray.get(done[0])
        except ray.exceptions.RayTaskError as exc:
            raise JobError(f"sweep run {pending[done[0]]} failed: {exc}") from None
        pending.pop(done[0])
        results.append(result)
        logger.info(
            "%d/%d runs done: %s loss %.4f", len(results), len(runs), result["name"], result[_fitted_on(job)]
        )
    results.sort(key=lambda r: (r["params"], r["tokens"]))
    with (out / "results.jsonl").open("w", encoding="utf-8") as handle:
        for row in results:
            handle.write(json.dumps(row) + "\n")
    fitted_on = _fitted_on(job)
    fit = fit_law(
        [r["params"] for r in results],
        [r["tokens"] for r in results],
        [r[fitted_on] for r in results],
        bootstrap=job.bootstrap,
        seed=job.seed,
    )
    summary = {**_fit_summary(fit), "fitted_on": fitted_on}
    (out / "fit.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    plot_sweep(results, fit.law, out / "sweep.png", loss=fitted_on)
    logger.info("fitted %s", summary["constants"])
    return summary


def _fitted_on(job: SweepJob) -> str:
    """The result column the law is fitted on."""
    return "validation_loss" if job.data.validation is not None else "final_loss"


NAMES = {"e": "E", "a": "A", "b": "B", "alpha": "alpha", "beta": "beta"}


def _fit_summary(fit: Fit) -> dict[str, Any]:
    return {
        "constants": {NAMES[k]: getattr(fit.law, k) for k in NAMES},
        "intervals_95": {NAMES[k]: list(v) for k, v in fit.intervals.items()},
        "huber_objective": fit.objective,
        "runs": fit.points,
    }


def plot_sweep(
    results: list[dict[str, Any]], law: ChinchillaLaw, path: Path, *, loss: str = "final_loss"
) -> None:
    """Iso-loss contours of the fitted law over (N, D) with the runs, and iso-FLOP curves; the
    runs are drawn with their `loss` (the result column the law was fitted on)."""
    params = np.array([r["params"] for r in results], dtype=float)
    tokens = np.array([r["tokens"] for r in results], dtype=float)
    n_grid = np.geomspace(params.min() / 2, params.max() * 2, 120)
    d_grid = np.geomspace(tokens.min() / 2, tokens.max() * 2, 120)
    nn, dd = np.meshgrid(n_grid, d_grid)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    contours = left.contour(nn, dd, law.e + law.a / nn**law.alpha + law.b / dd**law.beta, levels=10)
    left.clabel(contours, fontsize=7)
    left.scatter(params, tokens, c=[r[loss] for r in results], cmap="viridis", edgecolors="k")
    left.set(
        xscale="log", yscale="log", xlabel="parameters N", ylabel="tokens D", title="iso-loss (fitted law)"
    )
    for flops in np.geomspace((6 * params * tokens).min(), (6 * params * tokens).max(), 4):
        n = np.geomspace(params.min() / 4, params.max() * 4, 200)
        right.plot(
            n, law.e + law.a / n**law.alpha + law.b / (flops / (6 * n)) ** law.beta, label=f"C={flops:.1e}"
        )
    right.scatter(params, [r[loss] for r in results], s=12, c="k", label="runs")
    right.set(
        xscale="log",
        xlabel="parameters N",
        ylabel=loss.replace("_", " "),
        title="iso-FLOP curves (fitted law)",
    )
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
