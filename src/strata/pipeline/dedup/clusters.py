"""Near-duplicate clusters from MinHash signatures, computed across Ray workers.

No step gathers the documents, their signatures or the duplicate graph on one node:

1. Bands: every signature is cut into `bands` bands of `rows` values; each band becomes a
   64-bit bucket key, a (bucket, order) row. The rows are grouped by bucket, and only the
   buckets with two or more documents are kept; those rows then get their document's id,
   signature and shingle hashes (a join on `order`), so a document's shingles travel once
   for the signatures and once more per shared bucket, not once per band. Inside a bucket,
   each document is compared with the earlier documents (input order) and linked to the
   first whose exact Jaccard (of the shingle hashes) reaches the threshold: only verified
   pairs become edges. Documents without shingles (no word) get no bucket rows.
2. Components: the large-star / small-star rounds of Kiveris et al. ("Connected
   Components in MapReduce and Beyond", SoCC 2014) turn the edges into stars, each
   node pointing at the smallest node of its component. Every round groups the edges by
   node twice; the loop ends when the edges form a star forest (checked by a third grouping).

A node is a document's `order` (its input position), so a component's smallest node is
its earliest document, which is the one kept. Edges carry both ends' ids, so the
removal records name the kept document without a join.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from strata.pipeline.aggregate import sums
from strata.pipeline.blockwise import Blocks, map_blocks, numpy_batches
from strata.pipeline.dedup.minhash import shingle_array
from strata.pipeline.documents import Batch, rows_where
from strata.pipeline.exchange import map_groups

logger = logging.getLogger(__name__)
# Earlier bucket members a document is verified against; bounds a giant bucket's cost.
MAX_COMPARISONS = 64
MAX_ROUNDS = 64
EDGE_COLUMNS = ("a", "a_id", "b", "b_id")


def band_keys(signatures: np.ndarray[Any, Any], bands: int, rows: int) -> np.ndarray[Any, Any]:
    """(n, bands) uint64 bucket keys: a seeded linear hash of each band's values and its index."""
    multipliers = np.random.default_rng(0x5EED).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    values = signatures[:, : bands * rows].reshape(len(signatures), bands, rows).astype(np.uint64)
    keys = (values * multipliers).sum(axis=2, dtype=np.uint64)
    return np.asarray(keys ^ (np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)), np.uint64)


def exact_jaccard(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """Jaccard of two sorted arrays of unique shingle hashes (0 when both are empty)."""
    common = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - common
    return common / union if union else 0.0


def prefilter_threshold(threshold: float, num_perm: int) -> float:
    """Estimated Jaccard below which a candidate is not checked exactly: `threshold` minus 5
    standard deviations of the estimate, sqrt(J(1-J)/num_perm) (Broder 1997), so that a pair
    at the threshold is skipped with probability about 3e-7 (normal approximation)."""
    return threshold - 5 * float(np.sqrt(threshold * (1 - threshold) / num_perm))


class BandKeys:
    """numpy batch function: one (bucket, order) row per (document with shingles, band)."""

    def __init__(self, bands: int, rows: int) -> None:
        self.bands, self.rows = bands, rows

    def __call__(self, batch: Batch) -> Batch:
        signed = np.flatnonzero([len(s) for s in batch["shingles"]])
        width = self.bands * self.rows  # an empty batch has no signature to stack
        signatures = np.asarray(list(batch["signature"]), dtype=np.uint32).reshape(-1, width)[signed]
        return {
            "bucket": band_keys(signatures, self.bands, self.rows).reshape(-1),
            "order": np.repeat(np.asarray(batch["order"], dtype=np.int64)[signed], self.bands),
        }


def shared_buckets(rows: Batch) -> Batch:
    """The rows of buckets that hold two or more documents (a document is in a bucket at
    most once: band keys differ by band)."""
    _, members, counts = np.unique(rows["bucket"], return_inverse=True, return_counts=True)
    return rows_where(rows, counts[members] >= 2)


def _empty_edges() -> Batch:
    return {
        "a": np.zeros(0, np.int64),
        "a_id": np.zeros(0, object),
        "b": np.zeros(0, np.int64),
        "b_id": np.zeros(0, object),
    }


def _edges(pairs: list[tuple[int, str, int, str]]) -> Batch:
    if not pairs:
        return _empty_edges()
    a, a_id, b, b_id = zip(*pairs, strict=True)
    return {
        "a": np.array(a, np.int64),
        "a_id": np.array(a_id, object),
        "b": np.array(b, np.int64),
        "b_id": np.array(b_id, object),
    }


def bucket_edges(threshold: float) -> Callable[[Batch], Batch]:
    """A map_groups stage over one bucket that verifies each document against the earlier ones.

    It emits one row per document after the bucket's first: `a` the document, `b` the first
    earlier document whose exact Jaccard reaches `threshold` (-1 when none), `compared` the
    candidate pairs in the bucket. Only candidates whose estimated Jaccard passes
    `prefilter_threshold` are compared exactly. Rows with b >= 0 are the graph's edges.
    """

    def verify_bucket(group: Batch) -> Batch:
        by_order = np.argsort(np.asarray(group["order"], dtype=np.int64), kind="stable")
        nodes = np.asarray(group["order"], dtype=np.int64)[by_order]
        ids = np.asarray(group["id"], dtype=object)[by_order]
        signatures = np.stack(list(group["signature"]))[by_order]
        shingle_sets: dict[int, np.ndarray[Any, Any]] = {}  # sorted unique, made when first compared

        def shingle_set(k: int) -> np.ndarray[Any, Any]:
            if k not in shingle_sets:
                shingle_sets[k] = np.unique(shingle_array(group["shingles"][by_order[k]]))
            return shingle_sets[k]

        floor = prefilter_threshold(threshold, signatures.shape[1])
        rows: list[tuple[int, str, int, str]] = []
        compared = []
        for i in range(1, len(nodes)):
            first = max(0, i - MAX_COMPARISONS)
            estimate = (signatures[first:i] == signatures[i]).mean(axis=1)
            likely = first + np.flatnonzero(estimate >= floor)
            j = next(
                (int(k) for k in likely if exact_jaccard(shingle_set(int(k)), shingle_set(i)) >= threshold),
                -1,
            )
            rows.append(
                (int(nodes[i]), str(ids[i]), int(nodes[j]) if j >= 0 else -1, str(ids[j]) if j >= 0 else "")
            )
            compared.append(i - first)
        return {**_edges(rows), "compared": np.array(compared, np.int64)}

    return verify_bucket


def _neighbors(group: Batch) -> tuple[int, str, dict[int, str]]:
    node, node_id = int(group["a"][0]), str(group["a_id"][0])
    return node, node_id, {int(b): str(i) for b, i in zip(group["b"], group["b_id"], strict=True)}


def large_star(group: Batch) -> Batch:
    """Node u: link every larger neighbour to the smallest of u and its neighbours."""
    node, node_id, neighbors = _neighbors(group)
    m = min(neighbors, default=node)
    m, m_id = (m, neighbors[m]) if m < node else (node, node_id)
    return _edges([(v, v_id, m, m_id) for v, v_id in sorted(neighbors.items()) if v > node])


def small_star(group: Batch) -> Batch:
    """Node u with its smaller neighbours N: link u and N to the smallest of them."""
    node, node_id, neighbors = _neighbors(group)
    members = {v: i for v, i in neighbors.items() if v < node} | {node: node_id}
    m = min(members)
    return _edges([(v, v_id, m, members[m]) for v, v_id in sorted(members.items()) if v != m])


def star_check(group: Batch) -> Batch:
    """Node u with rows (u as child → parent, or u as parent): its one parent, or a violation.

    The edges are a star forest when no node has two parents and no parent is a child.
    """
    node, node_id = int(group["a"][0]), str(group["a_id"][0])
    parents = {
        int(p): str(i) for p, i, child in zip(group["b"], group["b_id"], group["child"], strict=True) if child
    }
    is_parent = not bool(np.all(group["child"]))
    violation = len(parents) > 1 or (bool(parents) and is_parent)
    parent, parent_id = min(parents.items()) if parents else (-1, "")
    return {
        "node": np.array([node], np.int64),
        "node_id": np.array([node_id], object),
        "parent": np.array([parent], np.int64),
        "parent_id": np.array([parent_id], object),
        "violation": np.array([int(violation)], np.int64),
    }


def _children(stars: Batch) -> Batch:
    return rows_where(stars, stars["parent"] >= 0, drop=("violation",))


def _both_directions(batch: Batch) -> Batch:
    return {
        "a": np.concatenate([batch["a"], batch["b"]]),
        "a_id": np.concatenate([batch["a_id"], batch["b_id"]]),
        "b": np.concatenate([batch["b"], batch["a"]]),
        "b_id": np.concatenate([batch["b_id"], batch["a_id"]]),
    }


def _child_and_parent_rows(batch: Batch) -> Batch:
    n = len(batch["a"])
    return {
        "a": np.concatenate([batch["a"], batch["b"]]),
        "a_id": np.concatenate([batch["a_id"], batch["b_id"]]),
        "b": np.concatenate([batch["b"], np.full(n, -1, np.int64)]),
        "b_id": np.concatenate([batch["b_id"], np.full(n, "", object)]),
        "child": np.concatenate([np.ones(n, bool), np.zeros(n, bool)]),
    }


def connected_components(edges: Blocks, partitions: int) -> Blocks:
    """Blocks of rows (node, node_id, parent, parent_id): every non-root node of the graph of
    `edges` (blocks of a, a_id, b, b_id rows) and its component's smallest node."""
    for round_no in range(1, MAX_ROUNDS + 1):
        large = map_groups(edges, "a", large_star, partitions, prepare=_both_directions)
        edges = map_groups(large, "a", small_star, partitions)
        stars = map_groups(edges, "a", star_check, partitions, prepare=_child_and_parent_rows)
        if not stars:  # no edge
            return []
        violations = sums(stars, ["violation"])["violation"]
        logger.info("connected components: round %d, %d nodes not yet in a star", round_no, violations)
        if violations == 0:
            return map_blocks(stars, numpy_batches(_children)).non_empty()
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
