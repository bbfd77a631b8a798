"""MinHash dedup as one Dataset stage: signatures → band buckets → verified edges → components.

The kept rows of the earliest document of each near-duplicate cluster stay kept; the
others get status `dropped_minhash_duplicate` and the kept document's id in
`duplicate_of`. Every kept row gets its cluster's size in `cluster_size` (1 outside a
cluster; rows dropped before keep theirs, 1). The rows come back in no particular order
(the runner sorts them at its checkpoint).
Every step runs as plain Ray tasks: the maps block by block (strata.pipeline.blockwise), the
groupings and the final join as hash partitions (strata.pipeline.exchange); a dataset with
no kept row, or no document with a word, skips every step after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.pipeline.aggregate import sums, totals
from strata.pipeline.blockwise import Blocks, Rows, blocks_of, map_blocks, numpy_batches, selected
from strata.pipeline.dedup.clusters import BandKeys, bucket_edges, connected_components, shared_buckets
from strata.pipeline.dedup.minhash import MinhashSignatures
from strata.pipeline.documents import dropped_table, kept_table, marked_duplicates, rows_where
from strata.pipeline.exchange import attach, left_join, map_groups, map_partitions
from strata.spec.dedup import MinhashSpec

MINHASH_DROP = "dropped_minhash_duplicate"


def empty_report() -> dict[str, Any]:
    """The report of a run that compared nothing (MinHash off, or no document left)."""
    return {"candidate_pairs": 0, "edges": 0, "minhash_skipped_no_shingles": 0, "cluster_size_histogram": {}}


def near_duplicates(rows: Rows, spec: MinhashSpec, partitions: int) -> tuple[Blocks, dict[str, Any]]:
    """Mark near duplicates; return the rows and the report (candidate pairs, edges, cluster
    sizes). Candidate pairs and edges are counted per bucket: a pair that shares k buckets
    counts k times in each."""
    report = empty_report()
    blocks = blocks_of(rows)
    kept = map_blocks(blocks, kept_table)
    signed = map_blocks(
        kept.blocks,
        selected(["id", "order", "text", "status"]),
        numpy_batches(MinhashSignatures(spec)),
        selected(["id", "order", "signature", "shingles"]),
    )
    keys = map_blocks(signed.blocks, numpy_batches(BandKeys(spec.bands, spec.rows)))
    # Documents without a word have no band row; every other has one per band.
    report["minhash_skipped_no_shingles"] = kept.count() - keys.count() // spec.bands
    buckets = verified_buckets(keys.non_empty(), signed.non_empty(), spec.threshold, partitions)
    if not buckets:  # no kept document with a word
        return blocks, report
    report["candidate_pairs"] = sums(buckets, ["compared"])["compared"]
    edges = map_blocks(buckets, numpy_batches(_linked))
    report["edges"] = edges.count()
    if report["edges"] == 0:
        return blocks, report
    stars = connected_components(edges.non_empty(), partitions)
    clusters = map_groups(stars, "parent", _cluster_rows, partitions)
    histogram = totals(clusters, ["members"], ["roots"])
    report["cluster_size_histogram"] = {
        int(row["members"]): row["roots"]
        for row in sorted(histogram, key=lambda r: r["members"])
        if row["roots"]
    }
    # Only kept rows can be marked: the rows dropped before pass through (cluster size 1).
    marked = left_join(kept.non_empty(), clusters, "order", _mark_near_duplicates, partitions)
    return marked + map_blocks(blocks, dropped_table).non_empty(), report


def verified_buckets(keys: Blocks, signed: Blocks, threshold: float, partitions: int) -> Blocks:
    """`bucket_edges` rows of every bucket that holds two or more documents, from the
    (bucket, order) rows `keys` and the documents' (id, order, signature, shingles) rows."""
    candidates = map_partitions(keys, "bucket", shared_buckets, partitions)
    members = attach(candidates, signed, "order", partitions) if candidates else []
    return map_groups(members, "bucket", bucket_edges(threshold), partitions)


def _linked(verified: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The verified rows that link two documents (b ≥ 0), as edges."""
    return rows_where(verified, verified["b"] >= 0, drop=("compared",))


def _cluster_rows(stars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """map_groups over one cluster's (node, parent, parent_id) rows: a row per removed document
    naming the kept one, and a row for the kept document (`roots` 1); `members` is the
    cluster's size on the kept document's row, 1 on the others."""
    n = len(stars["node"])
    return {
        "order": np.concatenate([stars["node"], stars["parent"][:1]]),
        "near_duplicate_of": np.concatenate([stars["parent_id"].astype(object), np.array([""], object)]),
        "members": np.concatenate([np.ones(n, np.int64), [n + 1]]),
        "roots": np.concatenate([np.zeros(n, np.int64), [1]]),
    }


def _mark_near_duplicates(table: pa.Table) -> pa.Table:
    """Kept documents with their cluster rows' columns (absent where a partition has none),
    marked, with their cluster's size in `cluster_size` (1 outside a cluster); the cluster
    rows' own columns dropped."""
    if "near_duplicate_of" not in table.column_names:
        return table  # cluster_size stays 1
    field = table.schema.get_field_index("cluster_size")
    size = pc.fill_null(table["members"], 1).cast(table.schema.field(field).type)
    table = table.set_column(field, "cluster_size", size).drop_columns(["members", "roots"])
    return marked_duplicates(table, "near_duplicate_of", MINHASH_DROP)
