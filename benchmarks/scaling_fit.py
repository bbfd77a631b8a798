"""The Chinchilla fit's wall time: Strata's objective against the same objective written with
scipy's `logsumexp` (the code before 2026-12-02), on the same points, in one run.

Usage:
    taskset -c 0 .venv/bin/python benchmarks/scaling_fit.py [--bootstrap 20] [--repeat 2]

The points are a 6 x 6 grid of (N, D) with losses from known constants (E 2.0, A 300,
B 500, alpha 0.35, beta 0.3) and 0.3% log-normal noise, as tests/scaling/test_fit.py has.
Runs the two alternately --repeat times; prints one JSON line per objective (best time in
seconds, and the fitted constants) and the ratio; both must fit the same constants to the
optimizer's tolerance.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from unittest import mock

import numpy as np
from scipy.special import huber, logsumexp

from strata.scaling import fit
from strata.scaling.laws import ChinchillaLaw

TRUE = ChinchillaLaw(name="true", e=2.0, a=300.0, b=500.0, alpha=0.35, beta=0.3)


def scipy_objective(
    theta: np.ndarray[Any, Any],
    log_n: np.ndarray[Any, Any],
    log_d: np.ndarray[Any, Any],
    log_l: np.ndarray[Any, Any],
) -> tuple[float, np.ndarray[Any, Any]]:
    """The baseline: the objective as it was, with scipy.special.logsumexp."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
    predicted = logsumexp(terms, axis=0)
    residual = predicted - log_l
    weights = np.exp(terms - predicted)
    slope = np.clip(residual, -fit.HUBER_DELTA, fit.HUBER_DELTA)
    grad = np.array(
        [
            np.sum(slope * weights[0]),
            np.sum(slope * weights[1]),
            np.sum(slope * weights[2]),
            np.sum(slope * weights[0] * -log_n),
            np.sum(slope * weights[1] * -log_d),
        ]
    )
    return float(np.sum(huber(fit.HUBER_DELTA, residual))), grad


def points() -> tuple[list[float], list[float], list[float]]:
    rng = np.random.default_rng(7)
    grid = [(n, d) for n in np.geomspace(1e7, 1e10, 6) for d in np.geomspace(1e9, 1e12, 6)]
    losses = [TRUE.loss(n, d) * float(np.exp(rng.normal(0, 0.003))) for n, d in grid]
    return [n for n, _ in grid], [d for _, d in grid], losses


def timed(objective: Any, bootstrap: int) -> tuple[float, fit.Fit]:
    with mock.patch.object(fit, "_objective", objective):
        start = time.perf_counter()
        result = fit.fit_law(*points(), bootstrap=bootstrap)
        return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    objectives = {"scipy_logsumexp": scipy_objective, "strata": fit._objective}
    rows: dict[str, tuple[float, fit.Fit]] = {}
    for _ in range(args.repeat):  # alternating, so that a change in the machine's speed hits both
        for name, objective in objectives.items():
            seconds, result = timed(objective, args.bootstrap)
            rows[name] = (min(seconds, rows[name][0]) if name in rows else seconds, result)
    for name, (seconds, result) in rows.items():
        law = result.law
        constants = {k: round(getattr(law, k), 4) for k in ("e", "a", "b", "alpha", "beta")}
        print(json.dumps({"objective": name, "seconds": round(seconds, 2), **constants}))
    ratio = rows["scipy_logsumexp"][0] / rows["strata"][0]
    print(json.dumps({"speedup_vs_scipy_logsumexp": round(ratio, 2)}))


if __name__ == "__main__":
    main()
