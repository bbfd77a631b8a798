"""Main-text extraction from real HTML pages in six languages, its time limit, and language ID
with the model that ships inside py3langid."""

from __future__ import annotations

import multiprocessing

import numpy as np

from strata.pipeline.extract import ExtractMainText
from strata.pipeline.language import IdentifyLanguage
from strata.pipeline.read import DocumentReader
from strata.spec.pipeline import ExtractSpec, InputSpec, LanguageSpec

WARC = "data/multilingual/debian-reference.warc.gz"


def warc_batch() -> dict[str, np.ndarray]:
    rows = list(DocumentReader(InputSpec(paths=[WARC]))({"path": WARC, "file_index": 0}))
    return {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}


def test_extraction_and_language_of_debian_reference_pages() -> None:
    batch = ExtractMainText(ExtractSpec())(warc_batch())
    assert all(s == "" for s in batch["status"])
    assert all(c == "text" for c in batch["content"])
    assert not any("<div" in t or "<html" in t for t in batch["text"])
    tagged = IdentifyLanguage(LanguageSpec())(batch)
    expected = [str(i).split(".")[1] for i in tagged["id"]]  # <urn:debian-reference:pr01.fr.html>
    assert list(tagged["language"]) == expected
    assert min(tagged["language_score"]) > 0.9


def test_language_keep_list_and_per_language_threshold() -> None:
    batch = ExtractMainText(ExtractSpec())(warc_batch())
    spec = LanguageSpec(keep=["en", "fr", "ja"], min_score_by_language={"ja": 1.01})
    out = IdentifyLanguage(spec)(batch)
    by_language = dict(zip(out["language"], out["status"], strict=False))
    assert by_language["en"] == "" and by_language["fr"] == ""
    assert by_language["de"] == "dropped_language_not_listed"
    assert by_language["ja"] == "dropped_language_low_score"


def test_a_page_over_the_time_limit_is_dropped_and_the_worker_goes_on() -> None:
    batch = warc_batch()
    # 30,000 paragraphs: trafilatura needs seconds for this page (measured ~4 s here).
    slow = (
        "<html><body>" + "<p>paragraph with some words in it to extract here.</p>" * 30_000 + "</body></html>"
    )
    batch["text"][1] = slow
    stage = ExtractMainText(ExtractSpec(timeout_s=0.5))
    out = stage(batch)
    assert out["status"][1] == "dropped_extract_timeout"
    assert out["status"][0] == "" and out["status"][2] == ""  # extracted before and after it
    assert len(out["text"][2]) > 1000


def test_html_without_main_text() -> None:
    batch = {
        "id": np.array(["empty"], dtype=object),
        "text": np.array(["<html><body><script>var menu = 1;</script></body></html>"], dtype=object),
        "content": np.array(["html"], dtype=object),
        "status": np.array([""], dtype=object),
    }
    assert ExtractMainText(ExtractSpec())(batch)["status"][0] == "dropped_extract_no_text"


def test_stages_of_one_setting_in_one_process_share_one_extraction_child() -> None:
    # Each input group's task builds its own stage; one child per worker process serves them all.
    children = set()
    for _ in range(3):
        assert ExtractMainText(ExtractSpec())(warc_batch())["status"][0] == ""
        children |= {child.pid for child in multiprocessing.active_children()}
    assert len(children) == 1
