"""Exact dedup ignores case and whitespace and keeps the earliest document."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ray

from strata.pipeline.dedup.exact import exact_duplicates, mark_exact_duplicates, normalized_hash
from strata.pipeline.exchange import dataset
from strata.pipeline.registry import with_defaults


def test_normalization_ignores_case_and_whitespace() -> None:
    assert normalized_hash("Hello  World\n") == normalized_hash("hello world")
    assert normalized_hash("hello world") != normalized_hash("hello, world")


def test_the_earliest_document_is_kept() -> None:
    h = normalized_hash("same")
    group = {
        "id": np.array(["late", "early", "middle"], dtype=object),
        "order": np.array([30, 10, 20]),
        "status": np.array(["", "", ""], dtype=object),
        "text_hash": np.array([h, h, h], dtype=object),
    }
    out = mark_exact_duplicates(group)
    assert list(out["status"]) == ["dropped_exact_duplicate", "", "dropped_exact_duplicate"]
    assert list(out["duplicate_of"]) == ["early", "", "early"]


def test_rows_of_several_hashes_are_marked_per_hash() -> None:
    a, b = normalized_hash("a"), normalized_hash("b")
    rows = {
        "id": np.array(["b-late", "a-first", "b-first", "a-late", "alone"], dtype=object),
        "order": np.array([9, 1, 2, 5, 7]),
        "status": np.full(5, "", dtype=object),
        "text_hash": np.array([b, a, b, a, normalized_hash("c")], dtype=object),
    }
    out = mark_exact_duplicates(rows)
    assert list(out["duplicate_of"]) == ["b-first", "", "", "a-first", ""]
    assert list(out["status"]) == ["dropped_exact_duplicate", "", "", "dropped_exact_duplicate", ""]
    assert mark_exact_duplicates({k: v[:0] for k, v in rows.items()})["status"].size == 0


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_kept_copies_are_marked_and_earlier_drops_come_back_untouched() -> None:
    texts = ["Same  text", "other text", "same text", "same text", "SAME TEXT"]
    status = ["", "", "dropped_c4_curly_bracket", "", ""]
    batch = with_defaults({"id": np.array([f"d{i}" for i in range(5)], object), "order": np.arange(5),
                           "text": np.array(texts, object), "status": np.array(status, object)})  # fmt: skip
    ds = ray.data.from_pandas(pd.DataFrame(batch)).repartition(2).materialize()
    rows = dataset(exact_duplicates(ds, partitions=2)).to_pandas().set_index("id").sort_values("order")
    assert list(rows["status"]) == [
        "",
        "",
        "dropped_c4_curly_bracket",
        "dropped_exact_duplicate",
        "dropped_exact_duplicate",
    ]
    assert list(rows["duplicate_of"]) == ["", "", "", "d0", "d0"]
    assert set(rows.reset_index().columns) == set(batch)  # no text_hash left behind
