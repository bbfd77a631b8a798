"""Exact dedup: documents whose case- and whitespace-normalized text hashes alike.

The first document in input order is kept; the others get status
`dropped_exact_duplicate` and record the kept document's id in `duplicate_of`.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa

from strata.pipeline.blockwise import Blocks, Rows, blocks_of, map_blocks, numpy_batch
from strata.pipeline.documents import Batch, dropped_table, kept_table
from strata.pipeline.exchange import map_tables

SPACE = re.compile(r"\s+")
DROP = "dropped_exact_duplicate"
HASH_ROWS = 1024


def normalized_hash(text: str) -> str:
    """SHA-1 of the text lower-cased with runs of whitespace collapsed."""
    normal = SPACE.sub(" ", text.lower()).strip()
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()


def with_text_hash(table: pa.Table) -> pa.Table:
    """The kept rows with `text_hash` (normalized_hash of each text), hashed HASH_ROWS texts
    at a time: a block's texts are never all Python strings at once."""
    text = table["text"]
    hashes = [
        normalized_hash(t)
        for start in range(0, table.num_rows, HASH_ROWS)
        for t in text.slice(start, HASH_ROWS).to_pylist()
    ]
    return table.append_column("text_hash", pa.array(hashes, pa.string()))


def mark_exact_duplicates(rows: Batch) -> Batch:
    """`status` and `duplicate_of` of kept rows (`id`, `order`, `text_hash`; any number of
    hashes): every row but the earliest (least `order`) of its hash becomes
    `dropped_exact_duplicate` naming the earliest one's id."""
    n = len(rows["order"])
    by_hash = np.lexsort((np.asarray(rows["order"]), np.asarray(rows["text_hash"])))
    hashes = np.asarray(rows["text_hash"])[by_hash]
    starts = np.concatenate([[True], hashes[1:] != hashes[:-1]]) if n else np.zeros(0, bool)
    earliest = np.empty(n, np.int64)
    earliest[by_hash] = by_hash[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
    duplicate = earliest != np.arange(n)
    status = np.asarray(rows["status"], dtype=object).copy()
    status[duplicate] = DROP
    duplicate_of = np.full(n, "", dtype=object)
    duplicate_of[duplicate] = np.asarray(rows["id"], dtype=object)[earliest[duplicate]]
    return {"status": status, "duplicate_of": duplicate_of}


def _marked(table: pa.Table) -> pa.Table:
    """One partition's kept rows, marked, without the `text_hash` column (so that the marked
    blocks have the columns of the rows that were not regrouped)."""
    marks = mark_exact_duplicates(numpy_batch(table.select(["id", "order", "status", "text_hash"])))
    for name, values in marks.items():
        field = table.schema.get_field_index(name)
        table = table.set_column(field, name, pa.array(values, table.schema.field(field).type))
    return table.drop_columns(["text_hash"])


def exact_duplicates(rows: Rows, partitions: int) -> Blocks:
    """Mark exact duplicates across workers: hash every kept text, group the kept rows by
    hash (in `partitions` tasks, as Arrow tables: strata.pipeline.exchange.map_tables); the
    rows dropped earlier are not regrouped (under one key they would all meet in one task:
    most of a crawl). The rows come back kept first, in no particular order (the runner
    sorts them at its checkpoint). Returns the non-empty blocks."""
    blocks = blocks_of(rows)
    dropped = map_blocks(blocks, dropped_table)
    kept = map_blocks(blocks, kept_table).non_empty()
    marked = map_tables(kept, "text_hash", _marked, partitions, prepare=with_text_hash) if kept else []
    return marked + dropped.non_empty()
