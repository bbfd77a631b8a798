"""Fit L(N, D) = E + A/N^α + B/D^β to measured losses the way Hoffmann et al. 2022 did.

Minimize the Huber loss (δ = 1e-3) between log L̂ = LSE(a − α·log N, b − β·log D, e)
and log L over (a, b, e, α, β), with L-BFGS from a grid of initial points, keeping
the best; A = exp(a), B = exp(b), E = exp(e). Bootstrap intervals refit resampled
points from the best solution.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber

from strata.scaling.laws import ChinchillaLaw

HUBER_DELTA = 1e-3
INIT_GRID = {
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit:
    """Fitted constants, their bootstrap intervals (2.5th, 97.5th percentile) and the objective."""

    law: ChinchillaLaw
    intervals: dict[str, tuple[float, float]]
    objective: float
    points: int


def _objective(
    theta: np.ndarray[Any, Any],
    log_n: np.ndarray[Any, Any],
    log_d: np.ndarray[Any, Any],
    log_l: np.ndarray[Any, Any],
) -> tuple[float, np.ndarray[Any, Any]]:
    """The Huber objective and its gradient in (a, b, e, α, β).

    The log-sum-exp is written out (max-shifted, as scipy's `logsumexp` computes it) and the
    gradient is one product: L-BFGS calls this ~150,000 times per fit, on tens of points,
    where scipy's general `logsumexp` spent two thirds of the time in argument handling."""
    a, b, e, alpha, beta = theta
    terms = np.empty((3, log_n.size))
    np.subtract(a, alpha * log_n, out=terms[0])
    np.subtract(b, beta * log_d, out=terms[1])
    terms[2] = e
    top = terms.max(axis=0)
    shifted = np.exp(terms - top)
    total = shifted.sum(axis=0)
    predicted = top + np.log(total)
    residual = predicted - log_l
    weights = shifted / total  # softmax over the three terms: exp(terms - predicted)
    slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)  # d huber / d residual
    by_term = weights @ slope  # d/da, d/db, d/de
    grad = np.array([*by_term, -(weights[0] * slope) @ log_n, -(weights[1] * slope) @ log_d])
    return float(np.sum(huber(HUBER_DELTA, residual))), grad


def _minimize(
    start: np.ndarray[Any, Any], data: tuple[np.ndarray[Any, Any], ...]
) -> tuple[float, np.ndarray[Any, Any]]:
    result = minimize(_objective, start, args=data, method="L-BFGS-B", jac=True)
    return float(result.fun), np.asarray(result.x)


def _to_law(theta: np.ndarray[Any, Any]) -> ChinchillaLaw:
    a, b, e, alpha, beta = (float(v) for v in theta)
    return ChinchillaLaw(
        name="fitted", e=float(np.exp(e)), a=float(np.exp(a)), b=float(np.exp(b)), alpha=alpha, beta=beta
    )


def fit_law(
    params: list[float], tokens: list[float], losses: list[float], *, bootstrap: int = 100, seed: int = 0
) -> Fit:
    """Fit the five constants to (N, D, L) points; at least 5 points are needed."""
    if len(losses) < 5:
        raise ValueError(f"fitting 5 constants needs at least 5 runs, got {len(losses)}")
    data = (np.log(params), np.log(tokens), np.log(losses))
    starts = [np.array(p, dtype=float) for p in itertools.product(*INIT_GRID.values())]
    best_value, best = min((_minimize(s, data) for s in starts), key=lambda r: r[0])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        pick = rng.integers(0, len(losses), size=len(losses))
        samples.append(_minimize(best, tuple(x[pick] for x in data))[1])
    law = _to_law(best)
    intervals: dict[str, tuple[float, float]] = {}
    if samples:
        laws = [_to_law(s) for s in samples]
        for name in ("e", "a", "b", "alpha", "beta"):
            values = np.array([getattr(fitted, name) for fitted in laws])
            intervals[name] = (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
    return Fit(law=law, intervals=intervals, objective=best_value, points=len(losses))
