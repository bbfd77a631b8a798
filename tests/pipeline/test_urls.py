"""The URL filter on the real Debian Reference WARC (data/multilingual/SOURCE.md): its
records' WARC-Target-URIs against block lists and banned words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from strata.errors import SpecError
from strata.pipeline.read import DocumentReader
from strata.pipeline.urls import NO_URL, FilterUrls, url_key
from strata.spec.cleaning import UrlFilterSpec
from strata.spec.pipeline import InputSpec

ROOT = Path(__file__).parents[2]
WARC = ROOT / "data" / "multilingual" / "debian-reference.warc.gz"
BLOCKLIST = ROOT / "tests" / "fixtures" / "cleaning" / "blocklist.txt"


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(DocumentReader(InputSpec())({"path": str(path), "file_index": 0}))


def _statuses(rows: list[dict[str, Any]], **spec: Any) -> list[str]:
    batch = {
        "url": np.array([r["url"] for r in rows], dtype=object),
        "status": np.array([r["status"] for r in rows], dtype=object),
    }
    out = FilterUrls(UrlFilterSpec(**spec))(batch)
    return [str(s) for s in out["status"]]


def _list(tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "list.txt"
    path.write_text("\n".join(entries) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def pages() -> list[dict[str, Any]]:
    return _rows(WARC)


def test_warc_rows_keep_their_target_uri(pages: list[dict[str, Any]]) -> None:
    assert len(pages) == 12
    assert pages[0]["url"] == "https://www.debian.org/doc/manuals/debian-reference/pr01.en.html"
    assert all(p["url"].startswith("https://www.debian.org/") for p in pages)


def test_a_listed_page_is_dropped_and_its_domain_neighbours_pass(pages: list[dict[str, Any]]) -> None:
    statuses = _statuses(pages, blocklists=[str(BLOCKLIST)])
    dropped = [p["url"].rsplit("/", 1)[1] for p, s in zip(pages, statuses, strict=True) if s]
    assert dropped == ["apa.ja.html"]
    assert set(statuses) == {"", "dropped_url_filter_blocked_url"}


@pytest.mark.parametrize(
    ("entry", "dropped"),
    [
        ("debian.org", 12),  # the registrable domain blocks www.debian.org
        ("WWW.Debian.org.", 12),  # the host itself, written loosely
        ("*.debian.org", 12),
        ("lists.debian.org", 0),  # a sibling subdomain blocks nothing here
        ("debian.net", 0),
        ("doc.www.debian.org", 0),  # a subdomain below the host
    ],
)
def test_domains_match_on_the_registrable_domain(
    pages: list[dict[str, Any]], tmp_path: Path, entry: str, dropped: int
) -> None:
    statuses = _statuses(pages, blocklists=[_list(tmp_path, entry)])
    assert statuses.count("dropped_url_filter_blocked_domain") == dropped
    assert statuses.count("") == 12 - dropped


def test_public_suffixes_are_known_offline(tmp_path: Path) -> None:
    rows = [{"url": u, "status": ""} for u in ("https://news.bbc.co.uk/a", "https://www.gov.uk/b")]
    assert _statuses(rows, blocklists=[_list(tmp_path, "bbc.co.uk")]) == [
        "dropped_url_filter_blocked_domain",
        "",
    ]
    for suffix in ("org", "co.uk"):
        with pytest.raises(SpecError, match=f"'{suffix}' is a public suffix"):
            FilterUrls(UrlFilterSpec(blocklists=[_list(tmp_path, suffix)]))


def test_banned_words_match_whole_url_tokens(pages: list[dict[str, Any]]) -> None:
    statuses = _statuses(pages, banned_words=["de"])  # not "debian", not "reference"
    dropped = [
        p["url"] for p, s in zip(pages, statuses, strict=True) if s == "dropped_url_filter_banned_word"
    ]
    assert [u.rsplit("/", 1)[1] for u in dropped] == ["pr01.de.html", "apa.de.html"]


def test_rows_without_a_url_pass_and_are_marked(tmp_path: Path) -> None:
    rows = [
        {"url": "", "status": ""},
        {"url": "", "status": "quarantined_invalid_json"},
        {"url": "http://[::1/broken", "status": ""},
    ]
    batch = {k: np.array([r[k] for r in rows], dtype=object) for k in ("url", "status")}
    out = FilterUrls(UrlFilterSpec(blocklists=[_list(tmp_path, "example.com")], banned_words=["x"]))(batch)
    assert list(out["status"]) == ["", "quarantined_invalid_json", ""]
    assert list(out[NO_URL]) == [1, 0, 0]


def test_jsonl_records_carry_their_url_field(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "a", "url": "https://Example.com/x"}\n{"text": "b"}\n', encoding="utf-8")
    assert [r["url"] for r in _rows(path)] == ["https://Example.com/x", ""]


def test_url_keys_ignore_scheme_case_fragment_and_trailing_slash() -> None:
    assert url_key("https://WWW.Debian.org/doc/#top") == url_key("www.debian.org/doc") == "www.debian.org/doc"
    assert url_key("http://h.org:8080/p?q=1") == "h.org:8080/p?q=1"


def test_missing_lists_and_bad_words_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"url_filter\.blocklists: .*nope\.txt not found"):
        UrlFilterSpec(blocklists=[str(tmp_path / "nope.txt")])
    with pytest.raises(ValidationError, match=r"url_filter\.banned_words: \['Casino'\]"):
        UrlFilterSpec(banned_words=["Casino"])
