"""Text is normalized once, on read: every stage's verdict is the same for the NFC and NFD
forms of a text and for its LF and CRLF line ends (property-based, over arbitrary Unicode)."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.pipeline.dedup.exact import normalized_hash
from strata.pipeline.documents import CONTROL, normalize_text
from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.language import IdentifyLanguage
from strata.pipeline.read import DocumentReader
from strata.spec.pipeline import InputSpec, LanguageSpec
from strata.spec.quality import C4Spec, FineWebSpec, GopherQualitySpec, GopherRepetitionSpec

WORDS = ["Le", "café", "crème", "était", "très", "bon", "the", "and", "of", "naïve", "Ångström", "東京",
         "e\u0301", "A\u030a", ".", "!", "...", "#", "-", " ", " ", " ", "\n", "\n\n", "\t", "\x00", "\ufeff"]  # fmt: skip
PROSE = st.lists(st.sampled_from(WORDS), max_size=80).map(" ".join)
TEXTS = st.one_of(st.text(max_size=300), PROSE)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(TEXTS)
@SETTINGS
def test_the_one_form_is_nfc_without_cr_or_controls_and_is_stable(text: str) -> None:
    normal = normalize_text(text)
    assert unicodedata.is_normalized("NFC", normal)
    assert "\r" not in normal and not CONTROL.search(normal) and not normal.startswith("\ufeff")
    assert normalize_text(normal) == normal


def read_text(text: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.jsonl"
        path.write_text(json.dumps({"id": "d", "text": text}) + "\n", encoding="utf-8")
        spec = InputSpec.model_construct(
            paths=[str(path)],
            format="auto",
            content="auto",
            text_key="text",
            id_key="id",
            max_doc_bytes=10**6,
        )
        (row,) = DocumentReader(spec)({"path": str(path), "file_index": 0})
    return row


@cache
def stages() -> tuple[list[Filter], IdentifyLanguage]:
    every_language: dict[str, Any] = {"languages": []}
    filters: list[Filter] = [
        GopherRepetition(GopherRepetitionSpec(**every_language)),
        GopherQuality(GopherQualitySpec(**every_language, min_words=3)),
        C4Quality(C4Spec(**every_language, min_sentences=1)),
        FineWebQuality(FineWebSpec(**every_language)),
    ]
    return filters, IdentifyLanguage(LanguageSpec())


def verdicts(row: dict[str, Any]) -> list[object]:
    """The read status, then each filter's status, the exact-dedup hash and the language."""
    filters, language = stages()
    out: list[object] = [row["status"], row["text"]]
    if row["status"]:
        return out
    for stage in filters:
        batch = {k: np.array([v], dtype=object) for k, v in row.items()}
        out.append(stage(batch)["status"][0])
    return [*out, normalized_hash(row["text"]), language.classify(row["text"])[0]]


@given(TEXTS.map(lambda t: t.replace("\r", "")))
@SETTINGS
def test_no_stage_tells_nfd_from_nfc_or_crlf_from_lf(text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    variants = [unicodedata.normalize("NFD", text), nfc.replace("\n", "\r\n"), nfc.replace("\n", "\r")]
    expected = verdicts(read_text(nfc))
    for variant in variants:
        assert verdicts(read_text(variant)) == expected


def test_a_french_paragraph_in_nfd_and_crlf_is_the_same_document() -> None:
    paragraph = "Le café de la crème brûlée était très apprécié.\nÀ Noël, élèves et maîtres chantèrent."
    nfc = read_text(paragraph)
    nfd_crlf = read_text(unicodedata.normalize("NFD", paragraph).replace("\n", "\r\n"))
    assert nfc["text"] == nfd_crlf["text"] == paragraph
    assert normalized_hash(nfc["text"]) == normalized_hash(nfd_crlf["text"])
