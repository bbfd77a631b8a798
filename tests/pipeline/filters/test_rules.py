"""Gopher repetition, C4 and FineWeb rules on hand-made edge cases: each drop names its rule,
thresholds come from the job file, and documents of other languages pass untouched."""

from __future__ import annotations

import numpy as np

from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.filters.text_stats import WordNgrams
from strata.spec.quality import C4Spec, FineWebSpec, GopherRepetitionSpec

PROSE = (
    "The committee met on Tuesday to review the budget for the coming year. "
    "Several members raised concerns about the cost of the new library. "
    "After a long discussion, they agreed to postpone the final vote until March. "
    "The chair thanked everyone for their patience and closed the meeting. "
    "Residents who want to comment can write to the town clerk before the next session."
)


def test_prose_passes_every_rule_set() -> None:
    text = "\n".join(s.strip() + "." for s in PROSE.split(".") if s.strip())
    assert GopherRepetition(GopherRepetitionSpec()).keep(text) == (True, "")
    assert FineWebQuality(FineWebSpec()).keep(text) == (True, "")
    c4 = C4Quality(C4Spec())
    assert c4.keep(c4.rewrite(text)) == (True, "")


def test_gopher_repetition_names_the_repeated_unit() -> None:
    rule = GopherRepetition(GopherRepetitionSpec())
    lines = "\n".join(["Buy cheap watches online today"] * 6 + [PROSE])
    assert rule.keep(lines) == (False, "dup_line_frac")
    paragraphs = "\n\n".join(["Subscribe to our newsletter for weekly deals and offers."] * 4 + [PROSE])
    assert rule.keep(paragraphs)[1].startswith("dup_para")
    spam = PROSE + " " + "click here now " * 40
    assert rule.keep(spam)[1] in {"top_2gram", "top_3gram", "top_4gram", "dup_5gram"}


def test_gopher_repetition_thresholds_come_from_the_job() -> None:
    text = "\n".join(["same line here"] * 2 + ["other words entirely"] * 2 + [PROSE])
    assert not GopherRepetition(GopherRepetitionSpec()).keep(text)[0]
    lenient = GopherRepetitionSpec(
        max_dup_line_frac=0.9, max_dup_line_char_frac=0.9, max_dup_para_frac=0.9, max_dup_para_char_frac=0.9
    )
    assert GopherRepetition(lenient).keep(text) == (True, "")


def test_ngram_counts_match_the_published_definition() -> None:
    words = ["a", "b", "a", "b", "a", "b", "c"]
    assert WordNgrams(words).top_chars(2) == len("a b") * 3
    assert WordNgrams(["a", "bc"]).top_chars(2) == len("a bc")  # once is counted too (datatrove)
    # Repeated 2-grams skip past themselves: "ab" at 0, "ba" at 1, then "ab" at 2 and at 4
    # repeat; their words are joined without a space (datatrove's find_all_duplicate).
    assert WordNgrams(words).repeated_chars(2) == 2 + 2


def test_c4_removes_bad_lines_then_judges_the_document() -> None:
    c4 = C4Quality(C4Spec())
    text = "\n".join(
        [
            "Menu",
            "Please enable JavaScript to view this page.",
            "This site uses cookies to improve your experience.",
            "The first real sentence is here[1].",
            *[f"Sentence number {i} of the article ends properly." for i in range(5)],
        ]
    )
    cleaned = c4.rewrite(text)
    assert "Menu" not in cleaned and "JavaScript" not in cleaned and "cookies" not in cleaned
    assert "here." in cleaned  # the citation mark is removed, the line kept
    assert c4.keep(cleaned) == (True, "")
    assert c4.keep(c4.rewrite("Lorem ipsum dolor sit amet. " * 6)) == (False, "lorem_ipsum")
    assert c4.keep(c4.rewrite("\n".join(["function f() { return 1; } is code."] * 6))) == (
        False,
        "curly_bracket",
    )
    assert c4.keep(c4.rewrite("One sentence only, said twice. Two.")) == (False, "too_few_sentences")


def test_fineweb_rules() -> None:
    rule = FineWebQuality(FineWebSpec())
    menu = "\n".join(["Home", "About us", "Products", "Contact", "Careers", PROSE])
    assert rule.keep(menu) == (False, "short_line_ratio")
    no_punct = "\n".join(f"item {i} in a list of things to buy today" for i in range(10))
    assert rule.keep(no_punct) == (False, "line_punct_ratio")
    repeated = PROSE + "\n" + "\n".join(["Share this article with your friends on social media."] * 3)
    assert rule.keep(repeated) == (False, "dup_line_char_ratio")


def test_rules_skip_documents_of_other_languages() -> None:
    rule = GopherRepetition(GopherRepetitionSpec())  # applies to ["en"] by default
    spam = "\n".join(["la même ligne encore"] * 10)
    batch = {
        "text": np.array([spam, spam, spam], dtype=object),
        "status": np.array(["", "", ""], dtype=object),
        "language": np.array(["fr", "en", ""], dtype=object),
    }
    out = rule(batch)
    dropped = "dropped_gopher_repetition_dup_line_frac"
    assert list(out["status"]) == ["", dropped, dropped]  # French passes; unknown language is judged
