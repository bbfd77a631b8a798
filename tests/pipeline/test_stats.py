"""The stats' token counts: kept documents' are the shards' ids, dropped documents' are
estimated from their bytes at the kept text's bytes per token of their language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from strata.pipeline.documents import shed_dropped_text
from strata.pipeline.stats import (
    NO_TOKENS,
    UNKNOWN_LANGUAGE,
    _dropped_count_columns,
    estimate_dropped_tokens,
    pipeline_stats,
)
from strata.spec.pipeline import PipelineJob


def _count(dropped_by: str, status: str, language: str, tokens: int, size: int) -> dict[str, Any]:
    return {
        "dropped_by": dropped_by,
        "status": status,
        "language": language,
        "documents": 1,
        "tokens": tokens,
        "bytes": size,
    }


COUNTS = [
    _count("", "", "en", 250, 1000),  # 4 bytes per token
    _count("", "", "de", 100, 600),  # 6 bytes per token
    _count("language", "dropped_language_low_score", "en", 0, 400),
    _count("gopher", "dropped_gopher_too_few_words", "de", 0, 60),
    _count("gopher", "dropped_gopher_too_few_words", "zh", 0, 96),  # no kept zh: all kept text's rate
]


def test_dropped_tokens_are_bytes_over_the_kept_bytes_per_token_of_their_language() -> None:
    counts, rates = estimate_dropped_tokens(COUNTS)
    assert rates == {"all": round(1600 / 350, 3), "de": 6.0, "en": 4.0}
    assert [c["tokens"] for c in counts] == [250, 100, 100, 10, round(96 / (1600 / 350))]


def test_stages_report_the_estimates_and_the_rates(tmp_path: Path) -> None:
    job = PipelineJob.model_validate(
        {"kind": "pipeline", "name": "t", "input": {"paths": [str(tmp_path)]}, "output": {"dir": "out"}}
    )
    stats = pipeline_stats(job=job, counts=COUNTS, manifest=NO_TOKENS, reports={}, balance={}, seconds=0.0)
    assert stats["stages"]["read"]["tokens_kept"] == 250 + 100 + 100 + 10 + 21
    assert stats["stages"]["language"]["tokens_kept"] == 250 + 100 + 10 + 21
    assert stats["stages"]["gopher"]["tokens_kept_by_language"] == {"de": 100, "en": 250}
    assert stats["tokens"]["dropped_estimated_at_bytes_per_token"]["en"] == 4.0


def test_without_kept_text_nothing_is_estimated() -> None:
    dropped = [c for c in COUNTS if c["status"]]
    assert estimate_dropped_tokens(dropped) == (dropped, {})


def test_dropped_rows_are_counted_in_utf8_bytes_and_kept_rows_are_left_out() -> None:
    table = pa.table(
        {
            "dropped_by": ["", "gopher", "language", "language"],
            "status": ["", "dropped_gopher_stop_words", "dropped_language", "dropped_language"],
            "language": ["en", "en", "", None],
            "text": ["kept text", "déjà vu", "日本語", ""],
        }
    )
    counts = _dropped_count_columns(table).to_pylist()
    assert counts == [
        _count("gopher", "dropped_gopher_stop_words", "en", 0, len("déjà vu".encode())),
        _count("language", "dropped_language", UNKNOWN_LANGUAGE, 0, 9),
        _count("language", "dropped_language", UNKNOWN_LANGUAGE, 0, 0),
    ]


def test_dropped_rows_shed_their_text_and_keep_its_bytes_counted() -> None:
    table = pa.table(
        {
            "dropped_by": ["", "gopher", "language", "language"],
            "status": ["", "dropped_gopher_stop_words", "dropped_language", "dropped_language"],
            "language": ["en", "en", "", None],
            "text": ["kept text", "déjà vu", "日本語", None],
        }
    )
    shed = shed_dropped_text(table)
    assert shed["text"].to_pylist() == ["kept text", "", "", ""]
    assert shed["dropped_bytes"].to_pylist() == [0, len("déjà vu".encode()), 9, 0]
    assert shed_dropped_text(shed).equals(shed)  # a later stage sheds nothing twice
    assert _dropped_count_columns(shed).equals(_dropped_count_columns(table))
