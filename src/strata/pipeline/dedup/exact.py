"""Exact dedup: documents whose case- and whitespace-normalized text hashes alike.

The first document in input order is kept; the others get status
`dropped_exact_duplicate` and record the kept document's id in `duplicate_of`.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import ray

from strata.pipeline.blockwise import map_blocks
from strata.pipeline.documents import KEPT, Batch, dropped_table, kept_mask, kept_table
from strata.pipeline.exchange import dataset, map_groups

SPACE = re.compile(r"\s+")


def normalized_hash(text: str) -> str:
    """SHA-1 of the text lower-cased with runs of whitespace collapsed."""
    normal = SPACE.sub(" ", text.lower()).strip()
    return hashlib.sha1(normal.encode("utf-8")).hexdigest()


def add_text_hash(batch: Batch) -> Batch:
    """map_batches stage: add `text_hash` (empty for rows already dropped)."""
    keep = kept_mask(batch)
    batch["text_hash"] = np.array(
        [normalized_hash(str(t)) if k else "" for t, k in zip(batch["text"], keep, strict=True)],
        dtype=object,
    )
    return batch


def mark_exact_duplicates(group: Batch) -> Batch:
    """map_groups stage over one `text_hash` group: keep the earliest document."""
    status = group["status"].astype(object)
    duplicate_of = np.array([""] * len(status), dtype=object)
    if group["text_hash"][0] and len(status) > 1:
        first = int(np.argmin(group["order"]))
        for i in range(len(status)):
            if i != first and status[i] == KEPT:
                status[i] = "dropped_exact_duplicate"
                duplicate_of[i] = group["id"][first]
    group["status"] = status
    group["duplicate_of"] = duplicate_of
    return group


def _marked(group: Batch) -> Batch:
    """`mark_exact_duplicates` without the `text_hash` column, so that the marked blocks have
    the columns of the rows that were not regrouped."""
    marked = mark_exact_duplicates(group)
    del marked["text_hash"]
    return marked


def exact_duplicates(ds: ray.data.Dataset, partitions: int) -> ray.data.Dataset:
    """Mark exact duplicates across workers: hash every kept text, group the kept rows by
    hash (in `partitions` tasks: strata.pipeline.exchange); the rows dropped earlier are not
    regrouped (under one key they would all meet in one task: most of a crawl). The rows come
    back kept first, in no particular order (the runner sorts them at its checkpoint). An
    empty dataset is returned as it is."""
    if ds.count() == 0:
        return ds
    rows = ds.to_arrow_refs()
    dropped = map_blocks(rows, dropped_table)
    kept = map_blocks(rows, kept_table).non_empty()
    marked = map_groups(kept, "text_hash", _marked, partitions, prepare=add_text_hash) if kept else []
    return dataset(marked + dropped.non_empty())
