"""Gopher quality rules keep prose and drop what each rule targets, by the published thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.spec.quality import GopherQualitySpec

PROSE = (
    "The quick brown fox jumps over the lazy dog and runs to the river bank. "
    "It is a story that has been told many times, with the same ending each time. "
) * 4


@pytest.fixture
def gopher() -> GopherQuality:
    return GopherQuality(GopherQualitySpec())


def test_prose_is_kept(gopher: GopherQuality) -> None:
    assert gopher.keep(PROSE) == (True, "")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("the and of to " * 10, "too_few_words"),
        ("the cat " + "x " * 200, "mean_word_length"),
        ("supercalifragilistic " * 60 + "the and", "mean_word_length"),
        (PROSE + " #tag" * 30, "hash_ratio"),
        (PROSE + " wait..." * 30, "ellipsis_ratio"),
        ("\n".join(f"- item number {i} of the list" for i in range(60)), "bullet_lines"),
        (
            PROSE + "\n" + "\n".join(f"then the story of the {i} foxes trails off…" for i in range(10)),
            "ellipsis_lines",
        ),
        ("the and " + "1234 5678 9012 " * 30, "alpha_words"),
        ("quick brown foxes jump over lazy dogs " * 10, "stop_words"),
    ],
)
def test_each_rule_drops_its_target(gopher: GopherQuality, text: str, reason: str) -> None:
    assert gopher.keep(text) == (False, reason)


def test_words_are_counted_as_datatrove_counts_them(gopher: GopherQuality) -> None:
    # Punctuation tokens are words for the alphabetic share: 63 of 123 tokens have a letter.
    assert gopher.keep("the and of " + "word, " * 60) == (False, "alpha_words")
    # Stop words count once each and by case: "the" alone, however often, is one.
    assert gopher.keep("quick brown foxes jump over lazy dogs " * 10 + "the the The THE") == (
        False,
        "stop_words",
    )
    assert gopher.keep("quick brown foxes jump over lazy dogs " * 10 + "the to") == (True, "")


def test_thresholds_are_overridable() -> None:
    lenient = GopherQuality(GopherQualitySpec(min_words=5))
    assert lenient.keep("the cat sat on the mat and slept") == (True, "")


def test_batch_marks_status_and_skips_rows_already_dropped(gopher: GopherQuality) -> None:
    batch = {
        "text": np.array([PROSE, "too short", ""], dtype=object),
        "status": np.array(["", "", "quarantined_empty_text"], dtype=object),
    }
    out = gopher(batch)
    assert list(out["status"]) == ["", "dropped_gopher_too_few_words", "quarantined_empty_text"]
