"""Temperature sampling: shares follow n^α, the repeat cap holds, and the choice of copies is
deterministic per document."""

from __future__ import annotations

import pytest

from strata.pipeline.balance import copies, group_key, rehydrated_copies, sampling_rates
from strata.spec.pipeline import BalanceSpec


def test_alpha_one_keeps_proportions_and_small_alpha_lifts_small_groups() -> None:
    tokens = {"en": 900_000, "fr": 90_000, "ja": 10_000}
    same = sampling_rates(tokens, BalanceSpec(enabled=True, alpha=1.0))
    assert same == pytest.approx({"en": 1.0, "fr": 1.0, "ja": 1.0})
    rates = sampling_rates(tokens, BalanceSpec(enabled=True, alpha=0.3, max_repeats=100))
    shares = {g: rates[g] * n / sum(tokens.values()) for g, n in tokens.items()}
    norm = sum(n**0.3 for n in tokens.values())
    assert shares == pytest.approx({g: n**0.3 / norm for g, n in tokens.items()})
    assert rates["ja"] > rates["fr"] > 1 > rates["en"]


def test_budget_and_repeat_cap() -> None:
    tokens = {"en": 900_000, "ja": 10_000}
    rates = sampling_rates(
        tokens, BalanceSpec(enabled=True, alpha=0.3, token_budget=2_000_000, max_repeats=4)
    )
    assert rates["ja"] == 4.0  # capped
    assert rates["en"] * 900_000 == pytest.approx(2_000_000 * 900_000**0.3 / (900_000**0.3 + 10_000**0.3))


def test_copies_are_deterministic_and_average_to_the_rate() -> None:
    draws = [copies(f"doc{i}", 2.3, seed=7) for i in range(20_000)]
    assert set(draws) == {2, 3}
    assert sum(draws) / len(draws) == pytest.approx(2.3, abs=0.02)
    assert draws == [copies(f"doc{i}", 2.3, seed=7) for i in range(20_000)]
    assert draws != [copies(f"doc{i}", 2.3, seed=8) for i in range(20_000)]


def test_group_key() -> None:
    assert group_key("fr", "www.debian.org", ["language", "source"]) == "fr/www.debian.org"
    assert group_key("", "x", ["language"]) == "unknown"


def test_rehydration_table_picks_the_largest_size_not_above() -> None:
    table = {2: 3, 5: 2, 100: 1}
    assert [rehydrated_copies(n, table) for n in (1, 2, 4, 5, 99, 100, 5000)] == [1, 3, 3, 2, 2, 1, 1]
    assert rehydrated_copies(7, {}) == 1
