"""Near-duplicate clustering across Ray workers: edges verified by exact Jaccard, stars rooted
at the earliest document, planted duplicates of the demo corpus found, unrelated documents kept."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray

from strata.pipeline.blockwise import count_rows
from strata.pipeline.dedup.clusters import (
    BandKeys,
    bucket_edges,
    connected_components,
    exact_jaccard,
    large_star,
    prefilter_threshold,
    shared_buckets,
    small_star,
)
from strata.pipeline.dedup.minhash import MinhashSignatures, shingles
from strata.pipeline.dedup.near import MINHASH_DROP, empty_report, near_duplicates, verified_buckets
from strata.pipeline.exchange import dataset
from strata.pipeline.registry import with_defaults
from strata.spec.dedup import MinhashSpec

CORPUS = Path("data/demo/corpus.jsonl")
PLANTED = Path("data/demo/planted.jsonl")


def edges_dataset(pairs: list[tuple[int, int]]) -> ray.data.Dataset:
    return ray.data.from_items([{"a": a, "a_id": f"d{a}", "b": b, "b_id": f"d{b}"} for a, b in pairs])


def reference_components(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """node → smallest node of its component, for non-root nodes (plain union-find, for checking)."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {n: root(n) for n in list(parent) if root(n) != n}


def test_star_rules_on_one_node() -> None:
    group = {
        "a": np.array([5, 5, 5]),
        "a_id": np.array(["d5"] * 3, object),
        "b": np.array([2, 7, 9]),
        "b_id": np.array(["d2", "d7", "d9"], object),
    }
    large = large_star(group)
    assert list(zip(large["a"], large["b"], strict=True)) == [(7, 2), (9, 2)]
    small = small_star(group)
    assert list(zip(small["a"], small["b"], strict=True)) == [(5, 2)]
    assert list(small["b_id"]) == ["d2"]


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_components_match_union_find_on_a_random_graph() -> None:
    rng = random.Random(3)
    pairs = [(rng.randrange(300), rng.randrange(300)) for _ in range(220)]
    pairs = [(a, b) for a, b in pairs if a != b] + [(i + 1, i) for i in range(400, 430)]  # a long chain
    stars = ray.data.from_arrow_refs(
        connected_components(edges_dataset(pairs).to_arrow_refs(), partitions=2)
    ).to_pandas()
    found = dict(zip(stars["node"], stars["parent"], strict=True))
    assert found == reference_components(pairs)
    assert all(stars["parent_id"] == "d" + stars["parent"].astype(str))


def shingle_column(*sets: object) -> np.ndarray:
    column = np.empty(len(sets), dtype=object)
    column[:] = [np.asarray(s, "<u4").tobytes() for s in sets]
    return column


def test_bucket_links_only_pairs_whose_exact_jaccard_reaches_the_threshold() -> None:
    sig = np.arange(112, dtype=np.uint32)
    words = np.arange(100)
    lucky = sig.copy()
    lucky[:10] += 1000  # estimate 102/112 = 0.91, exact Jaccard 75/150 = 0.5
    unlucky = sig.copy()
    unlucky[:40] += 1000  # estimate 72/112 = 0.64 (above the prefilter, 0.61), exact 90/110 = 0.82
    group = {
        "order": np.array([30, 10, 20, 40]),
        "id": np.array(["lucky", "first", "far", "unlucky"], object),
        "signature": np.array([lucky, sig, sig + 5000, unlucky]),
        "shingles": shingle_column(
            np.r_[words[:75], 3000 + words[:50]], words, words + 1000, np.r_[words[:90], 2000 + words[:10]]
        ),
    }
    out = bucket_edges(threshold=0.8)(group)
    assert list(zip(out["a_id"], out["b_id"], strict=True)) == [
        ("far", ""),
        ("lucky", ""),
        ("unlucky", "first"),
    ]
    assert list(out["compared"]) == [1, 2, 3]


def test_exact_jaccard_and_prefilter() -> None:
    assert exact_jaccard(np.array([1, 2, 3, 4], np.uint32), np.array([2, 3, 4, 5], np.uint32)) == 3 / 5
    assert exact_jaccard(np.zeros(0, np.uint32), np.zeros(0, np.uint32)) == 0.0
    # 5 standard deviations of the 112-hash estimate at J = 0.8 (sqrt(0.16 / 112) = 0.0378).
    assert prefilter_threshold(0.8, 112) == pytest.approx(0.611, abs=1e-3)
    assert prefilter_threshold(1.0, 112) == 1.0


def test_band_keys_give_a_row_per_band_and_skip_documents_without_shingles() -> None:
    batch = {
        "order": np.array([0, 1, 2]),
        "id": np.array(["x", "y", "emoji"], object),
        "signature": np.array([np.arange(8, dtype=np.uint32)] * 3),
        "shingles": shingle_column([5, 9], [5, 9], []),
    }
    rows = BandKeys(bands=4, rows=2)(batch)
    assert len(rows["bucket"]) == 8 and sorted(rows) == ["bucket", "order"]
    assert set(rows["order"]) == {0, 1}
    # Same signature → same bucket in every band; different bands → different buckets.
    assert (rows["bucket"][:4] == rows["bucket"][4:]).all() and len(set(rows["bucket"][:4])) == 4


def test_shared_buckets_keep_the_rows_of_buckets_with_two_or_more_documents() -> None:
    rows = {"bucket": np.array([5, 7, 5, 9, 7, 5], np.uint64), "order": np.arange(6)}
    assert list(shared_buckets(rows)["order"]) == [0, 1, 2, 4, 5]


def jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a, 5)), set(shingles(b, 5))
    return len(x & y) / len(x | y)


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_planted_near_duplicates_are_clustered_across_workers() -> None:
    docs = {}
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs[row["id"]] = row["text"]
    near = [p for p in map(json.loads, PLANTED.read_text().splitlines()) if p["kind"] == "near"]
    involved = {p["id"] for p in near} | {p["original"] for p in near}
    others = [i for i in docs if i not in involved and not i.startswith("planted/")][:300]
    ids = [*sorted(involved), *others]
    spec = MinhashSpec()
    rows = [{"id": i, "order": n, "text": docs[i], "status": ""} for n, i in enumerate(ids)]
    signed = (
        ray.data.from_items(rows)
        .map_batches(MinhashSignatures(spec), batch_format="numpy")
        .drop_columns(["text", "status"])
        .materialize()
    )
    keys = signed.map_batches(BandKeys(spec.bands, spec.rows), batch_format="numpy")
    verified = ray.data.from_arrow_refs(
        verified_buckets(keys.to_arrow_refs(), signed.to_arrow_refs(), spec.threshold, 2)
    )
    edges = verified.filter(lambda r: r["b"] >= 0).drop_columns(["compared"]).materialize()
    stars = ray.data.from_arrow_refs(connected_components(edges.to_arrow_refs(), partitions=2)).to_pandas()
    removed = dict(zip(stars["node_id"], stars["parent_id"], strict=True))
    pairs = {(p["id"], p["original"]) for p in near}
    found = {(d, k) for d, k in removed.items()} | {(k, d) for d, k in removed.items()}
    assert sum(pair in found for pair in pairs) / len(pairs) >= 0.95
    # Edges are verified exactly; the planted copies of one original form no chains.
    assert all(jaccard(docs[d], docs[k]) >= spec.threshold for d, k in removed.items())
    # The kept document is always the earliest of its cluster.
    order = {i: n for n, i in enumerate(ids)}
    assert all(order[k] < order[d] for d, k in removed.items())


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_near_duplicates_marks_later_copies_and_counts_wordless_documents() -> None:
    original = " ".join(f"word{i}" for i in range(60))
    texts = [
        original,
        "🎉🎉 🥳",  # no word: left to exact dedup, counted
        original + " more",  # Jaccard of its 5-grams with the first: 56/57
        "-- !!! ???",
        "a wholly different document about something else entirely, with words of its own",
        original,  # dropped earlier (status set): neither compared nor counted
    ]
    status = ["", "", "", "", "", "dropped_c4_curly_bracket"]
    batch = with_defaults({"id": np.array([f"d{i}" for i in range(6)], object), "order": np.arange(6),
                           "text": np.array(texts, object), "status": np.array(status, object)})  # fmt: skip
    ds = ray.data.from_pandas(pd.DataFrame(batch)).repartition(3)
    marked, report = near_duplicates(ds, MinhashSpec(), partitions=2)
    rows = dataset(marked).to_pandas().set_index("id")
    assert report["minhash_skipped_no_shingles"] == 2
    assert report["edges"] >= 1 and report["cluster_size_histogram"] == {2: 1}  # an edge per shared bucket
    assert rows.loc["d2", "status"] == MINHASH_DROP and rows.loc["d2", "duplicate_of"] == "d0"
    assert rows.loc["d5", "status"] == "dropped_c4_curly_bracket"
    assert list(rows.loc[["d0", "d1", "d3", "d4"], "status"]) == ["", "", "", ""]
    assert list(rows.loc[["d0", "d2", "d4"], "cluster_size"]) == [2, 1, 1]
    assert len(rows) == 6


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_near_duplicates_of_nothing_kept_compares_nothing() -> None:
    batch = with_defaults({"id": np.array(["d0"], object), "order": np.arange(1),
                           "text": np.array(["some words here"], object), "status": np.array(["dropped_x"], object)})  # fmt: skip
    marked, report = near_duplicates(ray.data.from_pandas(pd.DataFrame(batch)), MinhashSpec(), partitions=2)
    assert report == empty_report() and count_rows(marked) == 1
