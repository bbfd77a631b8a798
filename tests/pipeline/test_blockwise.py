"""Maps over blocks in plain Ray tasks give what Ray Data's map_batches gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import ray

from strata.pipeline.blockwise import (
    BATCH_ROWS,
    chained,
    count_rows,
    map_blocks,
    numpy_batches,
    selected,
    without_columns,
)
from strata.pipeline.documents import Batch, kept_table

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]


def _block(first: int, rows: int) -> pa.Table:
    order = np.arange(first, first + rows)
    status = np.where(order % 3 == 0, "dropped_rule", "")
    return pa.table({"order": order, "status": status, "text": [f"doc {i}" for i in order]})


def _batch_sizes(batch: Batch) -> Batch:
    """Each row's order, and the size of the batch it came in."""
    return {"order": batch["order"], "batch_rows": np.full(len(batch["order"]), len(batch["order"]))}


def test_a_chain_runs_per_block_with_the_rows_left_after_each_function() -> None:
    sizes = [2500, 0, 7]
    blocks = [ray.put(_block(sum(sizes[:i]), n)) for i, n in enumerate(sizes)]
    mapped = map_blocks(blocks, kept_table, numpy_batches(_batch_sizes))
    kept = [i for i in range(sum(sizes)) if i % 3]
    assert mapped.count(after=0) == len(kept)
    assert mapped.count() == len(kept)
    out = [ray.get(b) for b in mapped.non_empty()]
    assert len(out) == 2  # the empty block is left out
    assert [o for t in out for o in t["order"].to_pylist()] == kept  # block and row order kept
    # numpy functions see slices of at most BATCH_ROWS rows, never a whole block
    assert max(max(t["batch_rows"].to_pylist()) for t in out) == BATCH_ROWS
    assert count_rows(blocks) == sum(sizes)


def test_a_function_that_leaves_no_row_makes_an_empty_block() -> None:
    def none_kept(batch: Batch) -> Batch:
        return {"order": batch["order"][:0]}

    mapped = map_blocks([ray.put(_block(0, 10))], numpy_batches(none_kept))
    assert mapped.count() == 0
    assert mapped.non_empty() == []


def test_table_helpers_select_drop_and_chain() -> None:
    table = _block(0, 4)
    assert chained(selected(["order", "status"]), without_columns(["status", "absent"]))(
        table
    ).column_names == ["order"]
