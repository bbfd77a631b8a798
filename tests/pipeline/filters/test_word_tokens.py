"""Word tokens and sentences as datatrove counts them for English (spaCy 3.8's blank English
tokenizer and sentencizer): each expected split below is what `spacy.blank("en")` gives for
the same string (checked with datatrove 0.10.1's `split_into_words`, docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from strata.pipeline.filters.word_tokens import (
    LONG_CHUNK,
    ends_sentence,
    is_symbol,
    sentence_count,
    word_tokens,
)

SPACY_SPLITS = {
    "--access-token-file,": ["--access", "-", "token", "-", "file", ","],
    "file.txt foo.Bar": ["file.txt", "foo", ".", "Bar"],
    "i.e., the U.S. army": ["i.e.", ",", "the", "U.S.", "army"],
    "see http://www.x.com/a. or www.gnu.org.": ["see", "http://www.x.com/a", ".", "or", "www.gnu.org", "."],
    "3.14 1-2 10,000 2m 5km 100% $5": ["3.14", "1", "-", "2", "10,000", "2", "m", "5", "km", "100", "%", "$", "5"],
    "it's don't cannot foo's": ["it", "'s", "do", "n't", "can", "not", "foo", "'s"],
    "(ALPHA) a--b x...y ok... --": ["(", "ALPHA", ")", "a", "--", "b", "x", "...", "y", "ok", "...", "--"],
    "\"quoted\" 'single' #include <foo> a=b": ['"', "quoted", '"', "'", "single", "'", "#", "include", "<", "foo", ">", "a", "=", "b"],
    "foo(1) ls(1). [-v] __init__ a_b C++": ["foo(1", ")", "ls(1", ")", ".", "[", "-v", "]", "_", "_", "init", "_", "_", "a_b", "C++"],
    "etc. ABC. x. 1. c.f. e.g. Mr. 3pm": ["etc", ".", "ABC", ".", "x.", "1", ".", "c.f", ".", "e.g.", "Mr.", "3", "pm"],
    "a/b N/A 1/2 a,b 1,a ~/x user@host.com": ["a", "/", "b", "N", "/", "A", "1/2", "a", ",", "b", "1,a", "~/x", "user@host.com"],
    "x^2 2^3 3*4 3-a a-3 --foo=bar -O2 :) ''": ["x^2", "2", "^", "3", "3", "*", "4", "3", "-", "a", "a-3", "--foo", "=", "bar", "-O2", ":)", "''"],
}  # fmt: skip


@pytest.mark.parametrize("text", SPACY_SPLITS)
def test_tokens_are_spacys(text: str) -> None:
    assert word_tokens(text) == SPACY_SPLITS[text]


def test_whitespace_of_any_kind_separates_and_is_dropped() -> None:
    assert word_tokens(" a\tb\n\nc\u00a0d  ") == ["a", "b", "c", "d"]
    assert word_tokens("") == word_tokens(" \n ") == []


def test_the_chunk_cache_does_not_change_results() -> None:
    text = "Well-known words, (repeated) well-known words."
    assert word_tokens(text) == word_tokens(text) == ["Well", "-", "known", "words", ",", "(", "repeated", ")",
                                                       "well", "-", "known", "words", "."]  # fmt: skip


def test_symbols_are_punctuation_or_symbol_characters_only() -> None:
    assert [is_symbol(t) for t in ["--", "...", "$", "+", "a", "1", "--foo", "“"]] == [
        True, True, True, True, False, False, False, True,
    ]  # fmt: skip


def test_sentences_end_at_a_terminal_followed_by_a_word() -> None:
    assert sentence_count(word_tokens("One. Two! Three? Four")) == 4
    assert sentence_count(word_tokens("See e.g. the file.txt or 3.14 here.")) == 1  # no "." token inside
    assert sentence_count(word_tokens('He said "stop." Then left.')) == 2
    assert sentence_count([]) == 0
    assert [ends_sentence(s) for s in ["Done.", "Fin!", "終わり。", 'Quote."', "open", ""]] == [
        True, True, True, False, False, False,
    ]  # fmt: skip


def test_a_run_without_whitespace_over_the_limit_is_one_token() -> None:
    # Peeling 100,000 ")" one by one would copy the run 100,000 times; it stays whole.
    run = ")" * 100_000
    assert word_tokens(f"before {run} after") == ["before", run, "after"]
    assert word_tokens("(" + "a" * (LONG_CHUNK - 2) + ")") == ["(", "a" * (LONG_CHUNK - 2), ")"]
