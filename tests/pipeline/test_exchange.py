"""Grouping and joining by key on Ray tasks: the groups of a plain Python groupby, rows of one
key in block order, whatever the partition count; empty blocks and tensor columns survive."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import ray
from ray.data.block import BlockAccessor
from ray.experimental import get_object_locations

from strata.pipeline import exchange
from strata.pipeline.documents import Batch
from strata.pipeline.exchange import (
    attach,
    dataset,
    left_join,
    map_groups,
    map_partitions,
    map_tables,
    partition_of,
    sort_by,
    with_right_columns,
)


def blocks_of(rows: list[dict[str, object]], per_block: int) -> list[ray.ObjectRef]:  # type: ignore[type-arg]
    """Arrow blocks as Ray Data makes them from numpy batches (a list value: a tensor column)."""
    blocks = []
    for i in range(0, len(rows), per_block):
        chunk = rows[i : i + per_block]
        batch = {key: np.array([row[key] for row in chunk]) for key in chunk[0]}
        blocks.append(ray.put(BlockAccessor.batch_to_block(batch)))
    return blocks


def summary(group: Batch) -> Batch:
    """One row per key: the key, the rows' positions in input order, the sum of a 2-D column."""
    return {
        "key": group["key"][:1],
        "positions": np.array([" ".join(map(str, group["position"]))], object),
        "vector_sum": np.array([int(group["vector"].sum())]),  # a 2-D array, as Ray Data gives it
    }


def test_partitions_spread_consecutive_keys_and_are_stable() -> None:
    keys = np.arange(10_000, dtype=np.int64)
    counts = np.bincount(partition_of(keys, 4), minlength=4)
    assert counts.min() > 2_000  # 2,500 each if even
    text = np.array([f"k{i}" for i in range(100)], object)
    assert list(partition_of(text, 3)) == list(partition_of(text.copy(), 3))


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_map_groups_gives_each_key_its_rows_in_input_order(partitions: int) -> None:
    rng = random.Random(partitions)
    rows = [
        {"key": rng.choice(["a", "b", "c", "d", "e"]), "position": i, "vector": [i, 1]} for i in range(200)
    ]
    blocks = blocks_of(rows, 37)
    out = dataset(map_groups(blocks, "key", summary, partitions)).to_pandas()

    expected: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        expected[str(row["key"])].append(int(row["position"]))  # type: ignore[call-overload]
    assert sorted(out["key"]) == sorted(expected)
    for key, positions, vector_sum in zip(out["key"], out["positions"], out["vector_sum"], strict=True):
        assert positions == " ".join(map(str, expected[key]))
        assert vector_sum == sum(p + 1 for p in expected[key])


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_map_groups_skips_empty_blocks_and_returns_no_block_for_no_row() -> None:
    rows = [{"key": i % 2, "position": i, "vector": [i, 0]} for i in range(6)]
    blocks = [
        ray.put(pa.table({})),
        *blocks_of(rows, 3),
        ray.put(pa.table({"key": pa.array([], pa.int64())})),
    ]
    out = dataset(map_groups(blocks, "key", summary, 2)).to_pandas().sort_values("key")
    assert list(out["positions"]) == ["0 2 4", "1 3 5"]
    assert map_groups([ray.put(pa.table({}))], "key", summary, 2) == []


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_map_partitions_calls_once_per_partition_with_each_keys_rows_together() -> None:
    rows = [{"key": i % 7, "position": i, "vector": [i, 1]} for i in range(100)]

    def runs(batch: Batch) -> Batch:  # one row per call: its keys in the order seen
        keys = batch["key"]
        assert (np.diff(keys) >= 0).all()  # key order: each key's rows together
        return {"keys": np.array([" ".join(map(str, keys))], object)}

    out = dataset(map_partitions(blocks_of(rows, 30), "key", runs, 3)).to_pandas()
    partitions_hit = len(set(partition_of(np.arange(7), 3)))
    assert len(out) == partitions_hit < 7  # one call per partition with rows, not one per key
    seen = [int(k) for keys in out["keys"] for k in keys.split()]
    assert sorted(seen) == sorted(i % 7 for i in range(100))


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_map_tables_gives_each_partition_every_row_of_its_keys_as_arrow() -> None:
    rows = [{"key": f"k{i % 5}", "text": f"t{i}"} for i in range(40)]

    def with_length(table: pa.Table) -> pa.Table:
        return table.append_column("length", pa.compute.utf8_length(table["text"]))

    def keys_seen(table: pa.Table) -> pa.Table:  # one row per call: its keys and row count
        keys = sorted(set(table["key"].to_pylist()))
        return pa.table(
            {
                "keys": [" ".join(keys)],
                "rows": [table.num_rows],
                "length": [pa.compute.sum(table["length"]).as_py()],
            }
        )

    out = dataset(map_tables(blocks_of(rows, 7), "key", keys_seen, 3, prepare=with_length)).to_pandas()
    seen = [k for keys in out["keys"] for k in keys.split()]
    assert sorted(seen) == [f"k{i}" for i in range(5)]  # each key in one partition only
    assert out["rows"].sum() == 40 and out["length"].sum() == sum(len(str(r["text"])) for r in rows)


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_attach_copies_the_right_row_to_every_left_row_of_its_key() -> None:
    left = blocks_of([{"bucket": b, "order": o} for b, o in [(1, 4), (1, 9), (2, 4), (3, 0)]], 3)
    right = blocks_of([{"order": o, "signature": [o, o + 1], "id": f"d{o}"} for o in (0, 4, 9, 11)], 2)
    out = dataset(attach(left, right, "order", 2)).to_pandas().sort_values(["bucket", "order"])
    assert list(zip(out["bucket"], out["order"], out["id"], strict=True)) == [
        (1, 4, "d4"),
        (1, 9, "d9"),
        (2, 4, "d4"),
        (3, 0, "d0"),
    ]
    assert [list(s) for s in out["signature"]] == [[4, 5], [9, 10], [4, 5], [0, 1]]  # arrays kept
    with pytest.raises(ray.exceptions.RayTaskError, match="has no right row"):
        ray.get(attach(blocks_of([{"bucket": 1, "order": 5}], 1), right, "order", 1))


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_left_join_keeps_every_left_row_and_adds_the_right_columns() -> None:
    left = blocks_of([{"order": i, "text": f"t{i}"} for i in range(10)], 4)
    right = blocks_of([{"order": i, "label": f"l{i}"} for i in (2, 3, 7)], 2)

    def mark(table: pa.Table) -> pa.Table:  # a partition without right rows lacks the column
        if "label" not in table.column_names:
            return table.append_column("label", pa.array([""] * table.num_rows))
        return table.set_column(table.column_names.index("label"), "label", pc.fill_null(table["label"], ""))

    out = dataset(left_join(left, right, "order", mark, 3)).to_pandas().sort_values("order")
    assert list(out["order"]) == list(range(10))
    assert list(out["label"]) == ["", "", "l2", "l3", "", "", "", "l7", "", ""]
    assert list(out["text"]) == [f"t{i}" for i in range(10)]


def test_right_columns_are_null_where_the_key_has_no_right_row() -> None:
    left = pa.table({"order": [5, 1, 9, 1], "text": ["a", "b", "c", "d"]})
    right = pa.table({"order": [9, 1], "of": ["x", "y"], "size": [3, 2]})
    joined = with_right_columns(left, right, "order")
    assert joined.column_names == ["order", "text", "of", "size"]
    assert joined["of"].to_pylist() == [None, "y", "x", "y"]
    assert joined["size"].to_pylist() == [None, 2, 3, 2]
    assert with_right_columns(left, right.slice(0, 0), "order") == left


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("partitions", [1, 3])
def test_sort_by_orders_the_rows_across_blocks(partitions: int) -> None:
    rng = random.Random(7)
    rows = [{"order": rng.randrange(1_000_000), "text": f"t{i}"} for i in range(500)]
    blocks = [ray.put(pa.table({})), *blocks_of(rows, 60)]
    out = dataset(sort_by(blocks, "order", partitions)).to_pandas()
    expected = sorted(rows, key=lambda r: r["order"])  # type: ignore[arg-type,return-value]
    assert list(out["order"]) == [r["order"] for r in expected]
    assert list(out["text"]) == [r["text"] for r in expected]  # ties: input order


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_a_column_of_arrays_of_one_length_in_one_block_and_many_in_another_is_grouped() -> None:
    # Ray Data gives a block's `tokens` as a 2-D array when its arrays have one length.
    uniform = {"key": np.array([0, 1]), "tokens": np.array([np.arange(3), np.arange(3)])}
    ragged = {"key": np.array([0, 1]), "tokens": _objects([np.arange(2), np.arange(5)])}
    blocks = [ray.put(BlockAccessor.batch_to_block(batch)) for batch in (uniform, ragged)]

    def lengths(group: Batch) -> Batch:
        return {
            "key": group["key"][:1],
            "lengths": np.array([" ".join(str(len(t)) for t in group["tokens"])]),
        }

    out = dataset(map_groups(blocks, "key", lengths, 1)).to_pandas().sort_values("key")
    assert list(out["lengths"]) == ["3 2", "3 5"]


def _objects(values: list[object]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_large_inputs_get_more_partitions_than_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"key": i % 40, "position": i, "vector": [i, 1]} for i in range(4000)]
    blocks = blocks_of(rows, 500)
    sizes = [v["object_size"] for v in get_object_locations(blocks).values()]
    monkeypatch.setattr(exchange, "PARTITION_BYTES", sum(sizes) // 8)  # 8 partitions' worth
    out = map_groups(blocks, "key", summary, 2)
    assert len(out) > 2  # non-empty output blocks, one per partition
    groups = dataset(out).to_pandas()
    assert sorted(groups["key"]) == list(range(40))
    assert all(
        p.split()[:2] == [str(k), str(k + 40)]
        for k, p in zip(groups["key"], groups["positions"], strict=True)
    )
