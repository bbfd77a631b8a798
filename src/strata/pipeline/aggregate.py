"""Sums over a dataset, combined per block on the workers.

Each block is reduced to one row per group where it lies (`map_batches` over whole blocks),
the partial rows are held in Ray's object store, and the driver streams them and adds them
up: it holds one row per group, never the dataset's rows, and receives one partial row per
(block, group). This is the combiner of MapReduce (Dean & Ghemawat, 2004). Ray Data's own
`groupby(...).sum()` / `Dataset.sum()` give the same numbers through a shuffle operator, whose
actors take seconds to start and to hand their CPUs back, paid by that call or by the next
execution (`benchmarks/ray_sums.py`); with the other changes of that session this took the
pipeline of jobs/pipeline.yaml from 133 s to 74 s (docs/benchmarks.md). Use a shuffle instead
when the groups are as many as the rows (one per document or per cluster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import ray


@dataclass(frozen=True, slots=True)
class _PartialSums:
    """map_batches over whole blocks: the block's sums of `values` per distinct `keys`."""

    keys: tuple[str, ...]
    values: tuple[str, ...]

    def __call__(self, block: pd.DataFrame) -> pd.DataFrame:
        if not self.keys:
            return pd.DataFrame({v: [block[v].sum()] for v in self.values})
        summed = block.groupby(list(self.keys), dropna=False, sort=False)[list(self.values)].sum()
        return summed.reset_index()


def totals(ds: ray.data.Dataset, keys: list[str], values: list[str]) -> list[dict[str, Any]]:
    """One dict per distinct combination of `keys` (in first-seen order), with the sums of the
    integer columns `values`; [] for an empty dataset."""
    partial = ds.select_columns([*keys, *values]).map_batches(
        _PartialSums(tuple(keys), tuple(values)), batch_format="pandas", batch_size=None
    )
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in partial.materialize().iter_rows():
        summed = groups.setdefault(tuple(row[k] for k in keys), [0] * len(values))
        for i, v in enumerate(values):
            summed[i] += int(row[v])
    return [
        {**dict(zip(keys, group, strict=True)), **dict(zip(values, summed, strict=True))}
        for group, summed in groups.items()
    ]


def sums(ds: ray.data.Dataset, values: list[str]) -> dict[str, int]:
    """The sum of each integer column over the whole dataset (0 for an empty one)."""
    rows = totals(ds, [], values)
    return {v: rows[0][v] if rows else 0 for v in values}
