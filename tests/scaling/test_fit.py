"""The Chinchilla-style fit recovers a known law from noisy losses."""

from __future__ import annotations

import numpy as np
import pytest

from strata.scaling.fit import fit_law
from strata.scaling.laws import ChinchillaLaw

TRUE = ChinchillaLaw(name="true", e=2.0, a=300.0, b=500.0, alpha=0.35, beta=0.3)


def test_fit_recovers_known_constants_from_noisy_losses() -> None:
    rng = np.random.default_rng(7)
    params, tokens, losses = [], [], []
    for n in np.geomspace(1e7, 1e10, 6):
        for d in np.geomspace(1e9, 1e12, 6):
            params.append(n)
            tokens.append(d)
            losses.append(TRUE.loss(n, d) * np.exp(rng.normal(0, 0.003)))
    fit = fit_law(params, tokens, losses, bootstrap=20)
    assert fit.law.e == pytest.approx(TRUE.e, rel=0.02)
    assert fit.law.alpha == pytest.approx(TRUE.alpha, rel=0.05)
    assert fit.law.beta == pytest.approx(TRUE.beta, rel=0.05)
    assert fit.law.a == pytest.approx(TRUE.a, rel=0.25)
    assert fit.law.b == pytest.approx(TRUE.b, rel=0.25)
    low, high = fit.intervals["alpha"]
    assert low <= fit.law.alpha <= high


def test_too_few_points_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 5 runs"):
        fit_law([1e7, 1e8], [1e9, 1e9], [3.0, 2.9])
