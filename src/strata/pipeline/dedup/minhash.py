"""Near-duplicate dedup with datasketch MinHash LSH over word n-grams.

Step 1 (distributed, a Ray Data stage): a MinHash signature per kept document.
Step 2 (driver, signatures only): LSH with the declared bands x rows finds
candidate pairs; a pair counts only when its estimated Jaccard reaches the
threshold; connected pairs form clusters and the earliest document of each
cluster (input order) is kept.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.pipeline import MinhashSpec

WORD = re.compile(r"\w+", re.UNICODE)
SCHEME = "affine32"  # datasketch 2's bijective 32-bit permutations


def shingles(text: str, ngram: int) -> set[bytes]:
    """Lower-cased word n-grams; texts shorter than n give one shingle of all words."""
    words = WORD.findall(text.lower())
    if len(words) <= ngram:
        return {" ".join(words).encode("utf-8")}
    return {" ".join(words[i : i + ngram]).encode("utf-8") for i in range(len(words) - ngram + 1)}


class MinhashSignatures:
    """map_batches stage: add `signature` (uint32 hash values) for kept rows."""

    def __init__(self, spec: MinhashSpec) -> None:
        self.spec = spec
        self.num_perm = spec.bands * spec.rows

    def __call__(self, batch: Batch) -> Batch:
        keep = kept_mask(batch)
        texts = [str(t) for t, k in zip(batch["text"], keep, strict=True) if k]
        sets = [list(shingles(t, self.spec.ngram)) for t in texts]
        hashes = MinHash.bulk(sets, num_perm=self.num_perm, seed=self.spec.seed, scheme=SCHEME)
        signatures = np.zeros((len(keep), self.num_perm), dtype=np.uint32)
        signatures[keep] = np.array([m.hashvalues for m in hashes], dtype=np.uint32).reshape(
            -1, self.num_perm
        )
        batch["signature"] = signatures
        return batch


@dataclass(frozen=True, slots=True, kw_only=True)
class NearDuplicates:
    """Outcome of clustering: removed id → kept id, and how many clusters have each size (>1)."""

    duplicate_of: dict[str, str]
    cluster_size_histogram: dict[int, int]
    candidate_pairs: int


def find_near_duplicates(
    ids: list[str], orders: list[int], signatures: np.ndarray[Any, Any], spec: MinhashSpec
) -> NearDuplicates:
    """Cluster documents whose verified estimated Jaccard reaches the threshold."""
    num_perm = spec.bands * spec.rows
    lsh = MinHashLSH(num_perm=num_perm, params=(spec.bands, spec.rows))
    sketches = [LeanMinHash(seed=spec.seed, hashvalues=sig, scheme=SCHEME) for sig in signatures]
    for key, sketch in enumerate(sketches):
        lsh.insert(key, sketch, check_duplication=False)
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = 0
    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            if j <= i:
                continue
            pairs += 1
            if sketch.jaccard(sketches[j]) >= spec.threshold:
                a, b = root(i), root(j)
                # The earliest document becomes the cluster's root, so it is the one kept.
                first, second = (a, b) if orders[a] <= orders[b] else (b, a)
                parent[second] = first
    clusters: dict[int, list[int]] = {}
    for i in range(len(ids)):
        clusters.setdefault(root(i), []).append(i)
    duplicate_of = {ids[m]: ids[r] for r, members in clusters.items() for m in members if m != r}
    sizes = Counter(len(m) for m in clusters.values() if len(m) > 1)
    return NearDuplicates(
        duplicate_of=duplicate_of, cluster_size_histogram=dict(sorted(sizes.items())), candidate_pairs=pairs
    )
