"""Exact dedup ignores case and whitespace and keeps the earliest document."""

from __future__ import annotations

import numpy as np

from strata.pipeline.dedup.exact import mark_exact_duplicates, normalized_hash


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
