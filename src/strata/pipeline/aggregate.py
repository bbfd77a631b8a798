"""Sums over a dataset, combined per block on the workers.

Each block is reduced to one row per group where it lies, in one plain Ray task per block
(strata.pipeline.blockwise), and the driver adds the partial rows up: it holds one row per
group, never the dataset's rows, and receives one partial row per (block, group). This is
the combiner of MapReduce (Dean & Ghemawat, 2004). Ray Data's own `groupby(...).sum()` /
`Dataset.sum()` give the same numbers through a shuffle operator, whose actors take seconds
to start and to hand their CPUs back, paid by that call or by the next execution
(`benchmarks/ray_sums.py`); with the other changes of that session this took the pipeline of
jobs/pipeline.yaml from 133 s to 74 s (docs/benchmarks.md). Use a shuffle instead when the
groups are as many as the rows (one per document or per cluster).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import ray

from strata.pipeline.blockwise import Rows, TableFn, blocks_of


@ray.remote
def _partial_sums(
    block: pa.Table, keys: list[str], values: list[str], prepare: TableFn | None
) -> pd.DataFrame | None:
    """The block's sums of `values` per distinct `keys` (after `prepare`); None without rows."""
    if prepare is not None and block.num_rows:
        block = prepare(block)
    if not block.num_rows:
        return None
    frame = block.select([*keys, *values]).to_pandas()
    if not keys:
        return pd.DataFrame({v: [frame[v].sum()] for v in values})
    return frame.groupby(keys, dropna=False, sort=False)[values].sum().reset_index()


def totals(
    rows: Rows, keys: list[str], values: list[str], *, prepare: TableFn | None = None
) -> list[dict[str, Any]]:
    """One dict per distinct combination of `keys` (in first-seen order), with the sums of the
    integer columns `values` of the rows (of each block after `prepare`, when given); [] for
    no rows. A lazy Dataset is executed first (`blocks_of`)."""
    blocks = blocks_of(rows)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for frame in ray.get([_partial_sums.remote(b, keys, values, prepare) for b in blocks]):
        for row in [] if frame is None else frame.to_dict("records"):
            summed = groups.setdefault(tuple(row[k] for k in keys), [0] * len(values))
            for i, v in enumerate(values):
                summed[i] += int(row[v])
    return [
        {**dict(zip(keys, group, strict=True)), **dict(zip(values, summed, strict=True))}
        for group, summed in groups.items()
    ]


def sums(rows: Rows, values: list[str], *, prepare: TableFn | None = None) -> dict[str, int]:
    """The sum of each integer column over all rows (0 for none), after `prepare` as in `totals`."""
    found = totals(rows, [], values, prepare=prepare)
    return {v: found[0][v] if found else 0 for v in values}
