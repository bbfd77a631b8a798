"""Sums combined per block on the workers equal the sums over all rows."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import ray

from strata.pipeline.aggregate import sums, totals

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]


def test_totals_per_group_over_many_blocks_equal_a_plain_count() -> None:
    rng = random.Random(0)
    rows = [{"lang": rng.choice(["en", "de", ""]), "status": rng.choice(["kept", "dropped"]),
             "docs": 1, "tokens": rng.randrange(1000)} for _ in range(3000)]  # fmt: skip
    ds = ray.data.from_items(rows, override_num_blocks=7)
    docs: Counter[tuple[str, str]] = Counter()
    tokens: Counter[tuple[str, str]] = Counter()
    for r in rows:
        docs[r["lang"], r["status"]] += 1
        tokens[r["lang"], r["status"]] += r["tokens"]
    found = totals(ds, ["lang", "status"], ["docs", "tokens"])
    assert len(found) == len(docs)  # one row per group, whatever the blocks
    for row in found:
        assert (row["docs"], row["tokens"]) == (
            docs[row["lang"], row["status"]],
            tokens[row["lang"], row["status"]],
        )
    assert sums(ds, ["docs", "tokens"]) == {"docs": 3000, "tokens": sum(r["tokens"] for r in rows)}


def test_an_empty_dataset_sums_to_zero() -> None:
    empty = ray.data.from_items([{"k": "a", "n": 1}]).filter(lambda r: r["n"] > 1)
    assert totals(empty, ["k"], ["n"]) == []
    assert sums(empty, ["n"]) == {"n": 0}
