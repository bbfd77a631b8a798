"""Maps over a dataset's blocks as plain Ray tasks, one task per block.

Ray Data 2.60 starts a streaming executor for every execution of a plan (`materialize`,
the `count` of a lazy plan, an iteration): on the development machine a map over eight
small blocks took 0.25 to 0.4 s that way (1.4 s for the first in a process) and 16 to 32 ms as
plain tasks on Ray's pool of reusable workers (`benchmarks/ray_sums.py`,
docs/benchmarks.md). The stages after the per-document chain are many such small maps
(MinHash's band rows and edges, tokenization, copies, the stats' and side files' sums),
so they map their blocks here. Tasks are submitted at once and run while the driver goes
on; a chain of functions runs in one task, block by block, as Ray Data fuses its maps.

Functions take and return Arrow tables (`TableFn`); `numpy_batches` runs a function of
numpy batches (a `map_batches(batch_format="numpy")` function) on slices of BATCH_ROWS
rows (Ray Data's former default batch size; 2.60 passes whole blocks), so that a call
holds a slice of converted rows, and its results (token ids, shingles), not a block's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import pyarrow as pa
import ray
from ray.data import Dataset
from ray.data.block import BlockAccessor

from strata.pipeline.documents import Batch

TableFn = Callable[[pa.Table], pa.Table]
Blocks = list[ray.ObjectRef]  # type: ignore[type-arg]  # ObjectRef[pa.Table]
Rows = Dataset | Blocks  # a Dataset is executed (if lazy) for its blocks: `blocks_of`
BATCH_ROWS = 1024


def blocks_of(rows: Rows) -> Blocks:
    """The rows' blocks: a Dataset's (executing its plan when it is lazy), or the blocks given."""
    if isinstance(rows, Dataset):
        refs: Blocks = rows.to_arrow_refs()
        return refs
    return rows


@ray.remote
def _num_rows(block: pa.Table) -> int:
    return int(block.num_rows)


def count_rows(blocks: Blocks) -> int:
    """The rows of all blocks (one small task per block; waits for them)."""
    return sum(ray.get([_num_rows.remote(b) for b in blocks]))


def chained(*fns: TableFn) -> TableFn:
    """The table functions applied one after another, as one."""
    return partial(_chain, fns)


def _chain(fns: tuple[TableFn, ...], table: pa.Table) -> pa.Table:
    for fn in fns:
        table = fn(table)
    return table


def numpy_batch(block: pa.Table | pd.DataFrame) -> Batch:
    """A block as a numpy batch, as Ray Data's `map_batches(batch_format="numpy")` gives it."""
    batch: Batch = BlockAccessor.for_block(block).to_batch_format("numpy")
    return batch


def batch_rows(batch: Batch) -> int:
    """The rows of a numpy batch (0 for one without columns)."""
    return len(next(iter(batch.values()))) if batch else 0


def numpy_batches(fn: Callable[[Batch], Batch]) -> TableFn:
    """`fn`, a function of numpy batches, as a table function: called on each slice of at
    most BATCH_ROWS rows (never on none), its outputs joined into one table."""
    return partial(_in_numpy_batches, fn)


def _in_numpy_batches(fn: Callable[[Batch], Batch], table: pa.Table) -> pa.Table:
    tables = []
    for start in range(0, table.num_rows, BATCH_ROWS):
        out = fn(numpy_batch(table.slice(start, BATCH_ROWS)))
        if batch_rows(out):
            tables.append(BlockAccessor.batch_to_block(out))
    return concat_tables(tables)


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """The tables one after another (an empty table for none), their column types unified
    (`promote_options="permissive"`: a column that is all null in one table, `string` in one
    and `large_string` in another, as blocks from pandas and from Arrow have it)."""
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def selected(columns: list[str]) -> TableFn:
    """A table function keeping only `columns`."""
    return partial(_select, columns)


def _select(columns: list[str], table: pa.Table) -> pa.Table:
    return table.select(columns) if table.num_columns else table


def without_columns(columns: list[str]) -> TableFn:
    """A table function dropping `columns` (those it has)."""
    return partial(_drop, columns)


def _drop(columns: list[str], table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in columns if c in table.column_names])


@ray.remote(num_returns=2)
def _map_block(block: pa.Table, fns: tuple[TableFn, ...]) -> tuple[pa.Table, list[int]]:
    rows = []
    for fn in fns:
        block = fn(block) if block.num_rows else block
        rows.append(block.num_rows)
    return block, rows


@dataclass(frozen=True, slots=True)
class Mapped:
    """The blocks a map returns and, per block, its rows after each function, as references
    to results the tasks may still be computing."""

    blocks: Blocks
    rows: list[ray.ObjectRef]  # type: ignore[type-arg]  # ObjectRef[list[int]]

    def count(self, after: int = -1) -> int:
        """Rows after the function at position `after` (the last by default), all blocks
        together; waits for the tasks."""
        return sum(rows[after] for rows in ray.get(self.rows))

    def non_empty(self) -> Blocks:
        """The blocks with at least one row; waits for the tasks."""
        return [b for b, rows in zip(self.blocks, ray.get(self.rows), strict=True) if rows[-1]]


def map_blocks(blocks: Blocks, *fns: TableFn) -> Mapped:
    """`fns` applied one after another to each block, one task per block; the tasks run on
    after this returns. An empty block passes through without a call."""
    results: list[Any] = [_map_block.remote(block, fns) for block in blocks]
    return Mapped([block for block, _ in results], [rows for _, rows in results])
