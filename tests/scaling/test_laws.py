"""Published laws, checked against values worked out by hand from their constants."""

from __future__ import annotations

import math

import pytest

from strata.scaling.laws import BESIROGLU, HOFFMANN, LAWS, PF_DAY_FLOPS, KaplanLaw, compute_flops


def test_hoffmann_optimum_by_hand() -> None:
    flops = 5.76e23  # Chinchilla's compute budget
    alpha, beta, a, b = 0.34, 0.28, 406.4, 410.7
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))  # = 1.3447...
    n_star = g * (flops / 6) ** (beta / (alpha + beta))
    params, tokens = HOFFMANN.optimal(flops)
    assert g == pytest.approx(1.3447, rel=1e-4)
    assert params == pytest.approx(n_star) == pytest.approx(3.219e10, rel=1e-3)
    assert tokens == pytest.approx(flops / 6 / n_star)
    assert compute_flops(params, tokens) == pytest.approx(flops)
    # At the optimum the two marginal terms balance: α·A/N^α = β·B/D^β.
    assert alpha * a / params**alpha == pytest.approx(beta * b / tokens**beta)
    assert HOFFMANN.loss(params, tokens) == pytest.approx(
        1.69 + a / n_star**alpha + b / (flops / 6 / n_star) ** beta
    )


def test_the_optimum_is_the_minimum_along_the_budget() -> None:
    flops = 1e22
    params, tokens = BESIROGLU.optimal(flops)
    best = BESIROGLU.loss(params, tokens)
    for factor in (0.8, 0.95, 1.05, 1.25):
        assert BESIROGLU.loss(params * factor, flops / 6 / (params * factor)) > best


def test_twenty_tokens_per_parameter() -> None:
    params, tokens = LAWS["chinchilla-20x"].optimal(1.2e22)  # 1.2e22 = 6 · N · 20N → N = 1e10
    assert params == pytest.approx(1e10)
    assert tokens == pytest.approx(2e11)


def test_kaplan_by_hand() -> None:
    kaplan = KaplanLaw()
    assert kaplan.loss_params(8.8e9) == pytest.approx(10 ** (4 * 0.076))  # (8.8e13/8.8e9)^0.076
    assert kaplan.loss_tokens(5.4e9) == pytest.approx(10 ** (4 * 0.095))
    assert kaplan.loss_compute(3.1e8 * PF_DAY_FLOPS) == pytest.approx(1.0)
    params, tokens = kaplan.optimal(PF_DAY_FLOPS)  # one PF-day: N = 1.3e9
    assert params == pytest.approx(1.3e9)
    assert tokens == pytest.approx(PF_DAY_FLOPS / (6 * 1.3e9))
    # L(N, D) tends to L(N) as D grows.
    assert kaplan.loss(8.8e9, 1e30) == pytest.approx(kaplan.loss_params(8.8e9), rel=1e-6)
    assert math.isclose(
        kaplan.loss(1e9, 1e10), (((8.8e13 / 1e9) ** (0.076 / 0.095)) + 5.4e13 / 1e10) ** 0.095
    )
