"""Every quality rule gives a verdict with a reason for any text, degenerate ones included
(empty, whitespace-only, word-less, one line), at every threshold its spec allows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strata.pipeline.documents import normalize_text
from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.filters.text_stats import WordNgrams, duplicates
from strata.pipeline.filters.word_tokens import word_tokens
from strata.spec.quality import C4Spec, FineWebSpec, GopherQualitySpec, GopherRepetitionSpec

DEGENERATE = ["", " ", "\n\n\t \n", "-- ... !!! ??? ---", "#", "…", "😀 🎉 ✨", "word", "one line only."]
PIECES = ["word", "the", "and", "a", "Hello.", "—", "...", "…", "#", "*", "•", "{", "😀", "東京。", " ", "\n", "\n\n", "\t"]  # fmt: skip
TEXTS = st.one_of(
    st.sampled_from(DEGENERATE),
    st.text(max_size=200).map(normalize_text),
    st.lists(st.sampled_from(PIECES), max_size=60).map(" ".join),
)
# The spec bounds: ints at their `ge`, floats anything (the spec leaves them unbounded).
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
COUNT = st.integers(0, 200)
NGRAM_TABLE = st.dictionaries(st.integers(1, 12), ANY_FLOAT, max_size=4)
COMMON = {"languages": st.just([])}
SPECS: dict[type[Filter], st.SearchStrategy[object]] = {
    GopherQuality: st.builds(
        GopherQualitySpec, min_words=COUNT, max_words=st.integers(1, 10**6), min_mean_word_length=ANY_FLOAT,
        max_mean_word_length=ANY_FLOAT, max_symbol_word_ratio=ANY_FLOAT, max_bullet_lines_ratio=ANY_FLOAT,
        max_ellipsis_lines_ratio=ANY_FLOAT, min_alpha_words_ratio=ANY_FLOAT, min_stop_words=COUNT, **COMMON,
    ),
    GopherRepetition: st.builds(
        GopherRepetitionSpec, max_dup_line_frac=ANY_FLOAT, max_dup_para_frac=ANY_FLOAT,
        max_dup_line_char_frac=ANY_FLOAT, max_dup_para_char_frac=ANY_FLOAT,
        max_top_ngram_char_frac=NGRAM_TABLE, max_dup_ngram_char_frac=NGRAM_TABLE, **COMMON,
    ),
    C4Quality: st.builds(
        C4Spec, min_words_per_line=COUNT, require_terminal_punctuation=st.booleans(),
        max_word_length=st.integers(1, 2000), remove_javascript_lines=st.booleans(),
        remove_policy_lines=st.booleans(), drop_lorem_ipsum=st.booleans(), drop_curly_bracket=st.booleans(),
        min_sentences=COUNT, **COMMON,
    ),
    FineWebQuality: st.builds(
        FineWebSpec, min_line_punct_ratio=ANY_FLOAT, max_short_line_ratio=ANY_FLOAT,
        short_line_chars=st.integers(1, 500), max_dup_line_char_ratio=ANY_FLOAT,
        max_newline_word_ratio=ANY_FLOAT, **COMMON,
    ),
}  # fmt: skip


@pytest.mark.parametrize("rule", list(SPECS), ids=lambda r: r.name)
def test_every_rule_judges_every_text_at_every_threshold(rule: type[Filter]) -> None:
    @given(spec=SPECS[rule], text=TEXTS)
    @settings(max_examples=200, deadline=None)
    def check(spec: object, text: str) -> None:
        stage = rule(spec)  # type: ignore[arg-type]
        ok, reason = stage.keep(stage.rewrite(text))
        assert isinstance(ok, bool) and (ok or reason)
        batch = {
            "status": np.array([""], object),
            "text": np.array([text], object),
            "language": np.array([""], object),
        }
        status = stage(batch)["status"][0]
        assert status == ("" if ok else f"dropped_{rule.name}_{reason}")

    check()


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_documents_are_dropped_with_a_reason_by_every_rule(text: str) -> None:
    every: dict[str, list[str]] = {"languages": []}
    for stage in (
        GopherRepetition(GopherRepetitionSpec(**every)),
        GopherQuality(GopherQualitySpec(**every, min_words=0)),
        C4Quality(C4Spec(**every, min_sentences=0)),
        FineWebQuality(FineWebSpec(**every)),
    ):
        assert stage.keep(stage.rewrite(text)) in {
            (False, "empty"),
            (False, "no_words"),
            (False, "no_lines_left"),
        }


def test_a_punctuation_only_document_has_no_words_even_when_min_words_is_zero() -> None:
    stage = GopherQuality(GopherQualitySpec(languages=[], min_words=0))
    assert stage.keep("-- ... !!! ??? ---") == (False, "no_words")


def test_ngram_sizes_below_one_are_refused_by_the_spec() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GopherRepetitionSpec(max_dup_ngram_char_frac={0: 0.1})
    with pytest.raises(ValueError, match="n >= 1"):
        WordNgrams(["a", "b"]).repeated_chars(0)


@given(text=TEXTS, n=st.integers(1, 6))
@settings(max_examples=200, deadline=None)
def test_repeat_counts_stay_within_the_text(text: str, n: int) -> None:
    tokens = word_tokens(text)
    assert 0 <= WordNgrams(tokens).repeated_chars(n) <= len("".join(tokens))
    assert WordNgrams(tokens).top_chars(n) >= 0
    lines = text.split("\n")
    count, chars = duplicates(lines)
    assert 0 <= count < max(len(lines), 1) and 0 <= chars <= len(text)


def _reference_repeated_chars(tokens: list[str], n: int) -> int:
    """datatrove's find_all_duplicate, as its docstring-free loop reads."""
    seen: set[str] = set()
    chars = i = 0
    while i < len(tokens) - n + 1:
        gram = "".join(tokens[i : i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


@given(tokens=st.lists(st.sampled_from(["a", "bb", "c", "dd", "e"]), max_size=60), n=st.integers(1, 6))
@settings(max_examples=300, deadline=None)
def test_repeated_ngram_chars_is_the_scan_it_replaces(tokens: list[str], n: int) -> None:
    # Five words make repeats and skipped windows that hold earlier occurrences common.
    assert WordNgrams(tokens).repeated_chars(n) == _reference_repeated_chars(tokens, n)


@given(tokens=st.lists(st.sampled_from(["a", "bb", "c", "dd", "e"]), max_size=60), n=st.integers(1, 6))
@settings(max_examples=300, deadline=None)
def test_top_ngram_chars_is_the_count_it_replaces(tokens: list[str], n: int) -> None:
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    expected = len(grams.most_common(1)[0][0]) * grams.most_common(1)[0][1] if grams else 0
    assert WordNgrams(tokens).top_chars(n) == expected  # datatrove's find_top_duplicate, ties included
