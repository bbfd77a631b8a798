"""Grouping and joining rows by a key with plain Ray tasks: hash partitions, no actors.

Ray Data 2.60 runs each `groupby(...).map_groups(...)` and `join(...)` as a hash shuffle
whose aggregators are a pool of new actors, started for that operator and stopped after it.
A pipeline run has eight or more such operators; on the development machine their start-up
cost more than the work (benchmarks/pipeline_throughput.py, docs/benchmarks.md). Here a
shuffle is two rounds of tasks on Ray's pool of reusable workers, the shape of Ray's own
"simple shuffle" (docs.ray.io, "Shuffle" in the Ray Core examples):

1. one split task per block cuts it into one piece per partition, by a hash of the key
   column (or by key ranges, for a sort);
2. one reduce task per partition concatenates its pieces (one from every block), orders the
   rows by key (stable: rows of one key keep their block order) and calls `fn` once per
   key, on a numpy batch of that key's rows, as Ray Data's `map_groups` does.

The partitions are at least the caller's count (one per CPU: `partitions()`) and more when
the blocks hold over PARTITION_BYTES per partition, so a reduce task holds about
PARTITION_BYTES however large the data (when keys spread: rows of one key always meet in
one task). The object store holds blocks × partitions pieces between the rounds; the
driver holds object references and one row count per partition. Batches are converted to
and from Arrow blocks by Ray Data's own `BlockAccessor`, so tensor and ragged columns come
out as `map_batches(..., batch_format="numpy")` gives them. A sort (`sort_by`) needs no
function of the rows: its pieces stay Arrow tables, and only the key column is read.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data.block import BlockAccessor
from ray.experimental import get_object_locations

from strata.pipeline.blockwise import Blocks, TableFn, batch_rows, concat_tables, numpy_batch
from strata.pipeline.documents import Batch

BatchFn = Callable[[Batch], Batch]
FIBONACCI = np.uint64(0x9E3779B97F4A7C15)  # Knuth's multiplicative hash, 2^64 / golden ratio
# Regrouped bytes per partition, at most about: a reduce task holds its pieces, their
# key-ordered copy and its output, so a worker peaks near 3× this plus its own footprint.
PARTITION_BYTES = 64 << 20


def partitions() -> int:
    """Partitions of a shuffle: one per CPU of the cluster."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


def _partition_count(blocks: Blocks, at_least: int) -> int:
    """`at_least`, or more so that no partition gets much over PARTITION_BYTES of the blocks
    (their sizes in Ray's object store; a block whose size is not known counts as none)."""
    located = get_object_locations(blocks)
    total = sum(int(location.get("object_size") or 0) for location in located.values())
    return max(at_least, -(-total // PARTITION_BYTES))


def partition_of(keys: np.ndarray[Any, Any], partitions: int) -> np.ndarray[Any, Any]:
    """Partition (0 .. partitions - 1) of each key: the high bits of a Fibonacci hash for
    integers (consecutive keys spread), CRC-32 of the text for anything else."""
    if keys.dtype.kind in "iu":
        mixed = keys.astype(np.uint64) * FIBONACCI
        return np.asarray((mixed >> np.uint64(32)) % np.uint64(partitions), dtype=np.int64)
    return np.array([zlib.crc32(str(k).encode("utf-8")) % partitions for k in keys], dtype=np.int64)


def _concat(pieces: Sequence[Batch]) -> Batch:
    """Row-wise concatenation of numpy batches (pieces without rows may lack columns)."""
    full = [p for p in pieces if p and len(next(iter(p.values())))]
    if not full:
        return {}
    return {column: _stack([p[column] for p in full]) for column in full[0]}


def _stack(arrays: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """One column from several pieces. A column of arrays comes from Ray Data as a 2-D array
    when a block's arrays have one length and as an object array of arrays otherwise;
    pieces of different shapes are joined as an object array of arrays."""
    if len({a.shape[1:] for a in arrays}) == 1:
        return np.concatenate(arrays)
    rows = np.empty(sum(len(a) for a in arrays), dtype=object)
    rows[:] = [row for a in arrays for row in a]
    return rows


@ray.remote
def _split(block: pa.Table, key: str, partitions: int, prepare: BatchFn | None) -> list[Batch] | Batch:
    """The block's rows of each partition, by hash of the key; the one batch itself for one
    partition (a task with one return value returns it as it is, not in a list)."""
    batch = numpy_batch(block)
    if prepare is not None and batch_rows(batch):
        batch = prepare(batch)
    if partitions == 1:
        return batch
    if not batch_rows(batch):
        return [{} for _ in range(partitions)]
    part = partition_of(np.asarray(batch[key]), partitions)
    return [{c: v[part == p] for c, v in batch.items()} for p in range(partitions)]


@ray.remote
def _split_table(
    block: pa.Table, key: str, count: int, bounds: np.ndarray[Any, Any] | None, prepare: TableFn | None
) -> list[pa.Table] | pa.Table:
    """The block's rows of each of `count` partitions as Arrow tables (no row is converted):
    by key range when `bounds` (the ranges' upper ends) are given, by hash of the key
    otherwise; after `prepare`, if given. The block itself for one partition."""
    if prepare is not None and block.num_rows:
        block = prepare(block)
    if count == 1:
        return block
    if not block.num_rows:
        return [block] * count
    keys = block[key].to_numpy(zero_copy_only=False)
    part = partition_of(keys, count) if bounds is None else np.searchsorted(bounds, keys, side="right")
    return [block.filter(pa.array(part == p)) for p in range(count)]


def _by_key(batch: Batch, key: str) -> tuple[Batch, np.ndarray[Any, Any]]:
    """The batch in key order (stable) and the start of each key's run of rows."""
    position = np.argsort(batch[key], kind="stable")
    ordered = {c: v[position] for c, v in batch.items()}
    keys = ordered[key]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return ordered, starts


@ray.remote(num_returns=2)
def _reduce_groups(key: str, fn: BatchFn, per_key: bool, *pieces: Batch) -> tuple[pa.Table, int]:
    batch = _concat(pieces)
    if not batch:
        return pa.table({}), 0
    ordered, starts = _by_key(batch, key)
    if per_key:
        ends = np.append(starts[1:], batch_rows(ordered))
        out = _concat(
            [fn({c: v[s:e] for c, v in ordered.items()}) for s, e in zip(starts, ends, strict=True)]
        )
    else:
        out = fn(ordered)
    return _table(out)


def _table(batch: Batch) -> tuple[pa.Table, int]:
    """A reduce task's output block and its row count."""
    return BlockAccessor.batch_to_block(batch) if batch else pa.table({}), batch_rows(batch)


def _pieces(
    blocks: Blocks, key: str, partitions: int, prepare: BatchFn | None = None
) -> list[list[ray.ObjectRef]]:  # type: ignore[type-arg]
    """pieces[p] = partition p's piece of every block, by hash of the key."""
    split = [_split.options(num_returns=partitions).remote(b, key, partitions, prepare) for b in blocks]
    return _by_partition(split, partitions)


def _by_partition(split: list[Any], partitions: int) -> list[list[ray.ObjectRef]]:  # type: ignore[type-arg]
    """The split tasks' returns (one task per block) by partition."""
    if partitions == 1:  # one return value: a reference, not a list of them
        return [split]
    return [[parts[p] for parts in split] for p in range(partitions)]


def _non_empty(results: list[tuple[ray.ObjectRef, ray.ObjectRef]]) -> Blocks:  # type: ignore[type-arg]
    counts = ray.get([count for _, count in results])
    return [block for (block, _), n in zip(results, counts, strict=True) if n]


def map_groups(
    blocks: Blocks, key: str, fn: BatchFn, partitions: int, *, prepare: BatchFn | None = None
) -> Blocks:
    """`fn` applied to the rows of each distinct `key` (a numpy batch, rows in block order);
    returns the non-empty output blocks. `prepare`, if given, maps each block's batch first
    (in the split task). Rows of one key meet in one task: a key with most of the rows makes
    that task hold them."""
    return _regrouped(blocks, key, fn, partitions, per_key=True, prepare=prepare)


def map_partitions(blocks: Blocks, key: str, fn: BatchFn, partitions: int) -> Blocks:
    """`fn` applied once per hash partition of `key`, to all its rows in key order (the rows
    of one key together, in block order): map_groups for a vectorized `fn`, without a
    Python call per key. Returns the non-empty output blocks."""
    return _regrouped(blocks, key, fn, partitions, per_key=False)


def _regrouped(
    blocks: Blocks, key: str, fn: BatchFn, partitions: int, *, per_key: bool, prepare: BatchFn | None = None
) -> Blocks:
    count = _partition_count(blocks, partitions)
    return _non_empty(
        [_reduce_groups.remote(key, fn, per_key, *pieces) for pieces in _pieces(blocks, key, count, prepare)]
    )


def dataset(blocks: Blocks) -> ray.data.Dataset:
    """The blocks as a Ray Dataset (materialized: no plan runs when it is read)."""
    return ray.data.from_arrow_refs(blocks)  # type: ignore[arg-type]  # Ray's two ObjectRef types


def _key_matches(
    keys: np.ndarray[Any, Any], wanted: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """For each wanted key, the position of a row of `keys` holding it (any valid position
    where none does) and whether one does: a binary search over `keys` in sorted order."""
    if not len(keys):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    by_key = np.argsort(keys, kind="stable")
    found = by_key[np.minimum(np.searchsorted(keys, wanted, sorter=by_key), len(keys) - 1)]
    return found, keys[found] == wanted


@ray.remote(num_returns=2)
def _reduce_join(key: str, fn: TableFn, left_count: int, *pieces: pa.Table) -> tuple[pa.Table, int]:
    left = concat_tables([p for p in pieces[:left_count] if p.num_rows])
    if not left.num_rows:
        return pa.table({}), 0
    right = concat_tables([p for p in pieces[left_count:] if p.num_rows])
    out = fn(with_right_columns(left, right, key))
    return out, out.num_rows


def with_right_columns(left: pa.Table, right: pa.Table, key: str) -> pa.Table:
    """`left` with the other columns of `right`'s row of the same key appended (null where
    `right` has none; `right` holds at most one row per key); `left` itself, without those
    columns, when `right` has no rows."""
    if not right.num_rows:
        return left
    wanted = left[key].to_numpy()
    found, hit = _key_matches(right[key].to_numpy(), wanted)
    index = pa.array(found, mask=~hit)
    for name in right.column_names:
        if name != key:
            left = left.append_column(name, right[name].take(index))
    return left


def left_join(left: Blocks, right: Blocks, key: str, fn: TableFn, partitions: int) -> Blocks:
    """Every row of `left` with the columns of its `right` row of the same key (null where
    none; absent in a partition where `right` has no row; `right` holds at most one row per
    key), passed through `fn` once per hash partition as one Arrow table: no row is
    converted to Python objects. Returns the non-empty output blocks, rows in no set order."""
    count = _partition_count(left + right, partitions)
    lefts, rights = _table_pieces(left, key, count, None), _table_pieces(right, key, count, None)
    return _non_empty(
        [
            _reduce_join.remote(key, fn, len(l_pieces), *l_pieces, *r_pieces)
            for l_pieces, r_pieces in zip(lefts, rights, strict=True)
        ]
    )


@ray.remote(num_returns=2)
def _reduce_attach(key: str, left_count: int, *pieces: Batch) -> tuple[pa.Table, int]:
    left, right = _concat(pieces[:left_count]), _concat(pieces[left_count:])
    if not left:
        return pa.table({}), 0
    keys = right.get(key, np.zeros(0, left[key].dtype))
    found, hit = _key_matches(keys, left[key])
    if not hit.all():
        raise ValueError(f"attach: a left row's {key} has no right row")
    return _table({**left, **{c: v[found] for c, v in right.items() if c != key}})


def attach(left: Blocks, right: Blocks, key: str, partitions: int) -> Blocks:
    """Every row of `left` with the other columns of the `right` row of its key (an inner
    join where `right` holds one row per key and every left key has it: a row of `right`
    is copied to each left row of its key; ValueError otherwise), in numpy: columns of
    arrays stay as they are. Returns the non-empty output blocks, rows in no set order."""
    count = _partition_count(left + right, partitions)
    lefts, rights = _pieces(left, key, count), _pieces(right, key, count)
    return _non_empty(
        [
            _reduce_attach.remote(key, len(l_pieces), *l_pieces, *r_pieces)
            for l_pieces, r_pieces in zip(lefts, rights, strict=True)
        ]
    )


def _table_pieces(
    blocks: Blocks, key: str, count: int, bounds: np.ndarray[Any, Any] | None, prepare: TableFn | None = None
) -> list[list[ray.ObjectRef]]:  # type: ignore[type-arg]
    """pieces[p] = partition p's Arrow piece of every block (strata.pipeline.exchange._split_table)."""
    split = [_split_table.options(num_returns=count).remote(b, key, count, bounds, prepare) for b in blocks]
    return _by_partition(split, count)


@ray.remote(num_returns=2)
def _reduce_tables(fn: TableFn, *pieces: pa.Table) -> tuple[pa.Table, int]:
    full = [p for p in pieces if p.num_rows]
    if not full:
        return pa.table({}), 0
    out = fn(concat_tables(full))
    return out, out.num_rows


def map_tables(
    blocks: Blocks, key: str, fn: TableFn, partitions: int, *, prepare: TableFn | None = None
) -> Blocks:
    """`fn` applied once per hash partition of `key`, to its rows as one Arrow table (every
    row of a key in it; rows in no set order), after `prepare` on each block: a shuffle
    that converts no row to Python objects, for functions that read a few columns of wide
    rows. Returns the non-empty output blocks."""
    count = _partition_count(blocks, partitions)
    pieces = _table_pieces(blocks, key, count, None, prepare)
    return _non_empty([_reduce_tables.remote(fn, *part) for part in pieces])


SAMPLES_PER_BLOCK = 64


@ray.remote
def _sample(block: pa.Table, key: str) -> np.ndarray[Any, Any]:
    keys = block[key].to_numpy() if key in block.column_names else np.zeros(0)
    sample: np.ndarray[Any, Any] = np.sort(keys)[
        np.linspace(0, len(keys) - 1, min(len(keys), SAMPLES_PER_BLOCK)).astype(int)
    ]
    return sample


@ray.remote(num_returns=2)
def _reduce_sorted(key: str, path: str | None, *pieces: pa.Table) -> tuple[pa.Table, int]:
    full = [p for p in pieces if p.num_rows]
    if not full:
        return pa.table({}), 0
    joined = concat_tables(full)
    table = joined.take(np.argsort(joined[key].to_numpy(), kind="stable"))
    if path is not None:
        pq.write_table(table, path)
    return table, table.num_rows


def sort_by(blocks: Blocks, key: str, partitions: int, *, write_dir: str | None = None) -> Blocks:
    """The rows of `blocks` in `key` order (stable), block after block: each of `partitions`
    tasks sorts one key range, whose bounds are quantiles of SAMPLES_PER_BLOCK keys sampled
    from every block (the shape of Ray Data's sort, on tasks). With `write_dir` (a folder
    every worker sees), each task also writes its rows there as `part-NNNNN.parquet`, so the
    files in name order hold the rows in key order (a partition without rows writes none)."""
    sampled = [s for s in ray.get([_sample.remote(b, key) for b in blocks]) if len(s)]
    if not sampled:
        return []
    samples = np.sort(np.concatenate(sampled))
    count = _partition_count(blocks, partitions)
    bounds = samples[(np.arange(1, count) * len(samples)) // count]
    pieces = _table_pieces(blocks, key, count, bounds)
    return _non_empty(
        [
            _reduce_sorted.remote(
                key, None if write_dir is None else f"{write_dir}/part-{p:05d}.parquet", *part
            )
            for p, part in enumerate(pieces)
        ]
    )
