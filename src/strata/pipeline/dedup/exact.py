"""Exact dedup: documents whose case- and whitespace-normalized text hashes alike.

The first document in input order is kept; the others get status
`dropped_exact_duplicate` and record the kept document's id in `duplicate_of`.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import ray

from strata.pipeline.documents import KEPT, Batch, kept_mask
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


def exact_duplicates(ds: ray.data.Dataset, partitions: int) -> ray.data.Dataset:
    """Mark exact duplicates across workers: hash every kept text, group by hash (in
    `partitions` tasks: strata.pipeline.exchange). An empty dataset is returned as it is."""
    if ds.count() == 0:
        return ds
    blocks = map_groups(
        ds.to_arrow_refs(), "text_hash", mark_exact_duplicates, partitions, prepare=add_text_hash
    )
    return dataset(blocks)
