"""Readers for every input format: stable ids, and bad records or broken files quarantined by
reason with their source and offset, never fatal."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from pydantic import ValidationError
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from strata.errors import JobError
from strata.pipeline.read import DocumentReader, detect_format, input_files
from strata.spec.pipeline import InputSpec

WARC = Path("data/multilingual/debian-reference.warc.gz")


def read(path: Path, **spec: object) -> list[dict[str, object]]:
    fields: dict[str, object] = {
        "paths": [str(path)],
        "format": "auto",
        "content": "auto",
        "text_key": "text",
        "id_key": "id",
        "max_doc_bytes": 1_000_000,
        "content_types": ["text/html", "application/xhtml+xml", "text/plain"],
        **spec,
    }
    return list(DocumentReader(InputSpec.model_construct(**fields))({"path": str(path), "file_index": 0}))


def good_lines(n: int) -> list[bytes]:
    return [json.dumps({"id": f"doc{i}", "text": f"document number {i} " * 20}).encode() for i in range(n)]


def test_bad_jsonl_records_are_quarantined_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "good text"}).encode(),
        b"{not json",
        b'{"id": "b", "text": "caf\xe9"}',  # Latin-1 byte: invalid UTF-8
        json.dumps({"id": "c", "text": "   "}).encode(),
        json.dumps({"id": "d", "body": "no text field"}).encode(),
        json.dumps({"id": "e", "text": "x" * 500}).encode(),
        b"",
        json.dumps({"text": "no id"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = read(path, max_doc_bytes=200)
    assert [r["status"] for r in rows] == [
        "",
        "quarantined_invalid_json",
        "quarantined_invalid_utf8",
        "quarantined_empty_text",
        "quarantined_no_text",
        "quarantined_too_large",
        "",
    ]
    assert rows[0]["id"] == "a" and rows[0]["text"] == "good text"
    assert rows[1]["detail"] == f"{path}:2"
    assert rows[-1]["id"] == f"{path}:8"  # no id field: source path and line
    assert [r["order"] for r in rows] == sorted(r["order"] for r in rows)


def test_truncated_gzip_keeps_the_records_before_the_cut(tmp_path: Path) -> None:
    data = gzip.compress(b"\n".join(good_lines(200)) + b"\n")
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    rows = read(path)
    good = [r for r in rows if r["status"] == ""]
    assert 0 < len(good) < 200
    assert [r["id"] for r in good] == [f"doc{i}" for i in range(len(good))]
    assert rows[-1]["status"] == "quarantined_truncated_file"
    assert rows[-1]["detail"] == f"{path}:{len(good) + 1}"


def test_zstd_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(good_lines(30)) + b"\n"))
    rows = read(path)
    assert [r["id"] for r in rows] == [f"doc{i}" for i in range(30)]
    assert all(r["status"] == "" for r in rows)


def test_parquet_rows_and_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": ["first text", "", "third text"], "url": ["u1", "u2", "u3"]}), path)
    rows = read(path, id_key=None)
    assert [r["status"] for r in rows] == ["", "quarantined_empty_text", ""]
    assert [r["id"] for r in rows] == [f"{path}#0", f"{path}#1", f"{path}#2"]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file")
    assert [r["status"] for r in read(broken)] == ["quarantined_unreadable_file"]


def test_text_folder_one_document_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second file")
    (folder / "sub" / "a.txt").write_text("nested file")
    (folder / "bad.txt").write_bytes(b"caf\xe9")
    (folder / ".hidden.txt").write_text("skipped")
    (folder / "logo.png").write_bytes(b"\x89PNG")  # unknown format inside a folder: skipped
    spec = InputSpec.model_construct(paths=[str(folder)])
    files = input_files(spec)
    assert files == sorted([str(folder / "b.txt"), str(folder / "bad.txt"), str(folder / "sub" / "a.txt")])
    texts = {f: read(Path(f))[0] for f in files}
    assert texts[str(folder / "b.txt")]["text"] == "second file"
    assert texts[str(folder / "b.txt")]["id"] == str(folder / "b.txt")
    assert texts[str(folder / "bad.txt")]["status"] == "quarantined_invalid_utf8"


def test_warc_responses_are_html_with_record_ids() -> None:
    rows = read(WARC)
    assert len(rows) == 12
    assert all(r["content"] == "html" and r["status"] == "" for r in rows)
    assert rows[0]["id"] == "<urn:debian-reference:pr01.en.html>"
    assert rows[0]["source"] == "www.debian.org"
    assert rows[1]["detail"].startswith(f"{WARC}@") and rows[1]["detail"] != f"{WARC}@0"
    assert str(rows[0]["text"]).lstrip().startswith("<?xml")


def test_truncated_warc_keeps_whole_records(tmp_path: Path) -> None:
    data = WARC.read_bytes()
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: len(data) // 2])
    rows = read(path)
    good = [r for r in rows if r["status"] == ""]
    assert 0 < len(good) < 12
    assert rows[-1]["status"] == "quarantined_truncated_file"


def test_unknown_suffix_names_the_fix() -> None:
    assert detect_format("x/part-0001.jsonl.zst") == "jsonl"
    assert detect_format("crawl/CC-MAIN-1.warc.wet.gz") == "warc"
    with pytest.raises(JobError, match=r"set input.format"):
        detect_format("data.bin")


def test_html_files_are_read_as_html(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body><p>Hello</p></body></html>")
    rows = read(page)
    assert rows[0]["content"] == "html" and rows[0]["id"] == str(page)
    assert read(page, content="text")[0]["content"] == "text"


def test_a_record_that_breaks_conversion_is_quarantined_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"id": "a", "text": "party \\ud83d tonight"}\n' + b"\n".join(good_lines(2)) + b"\n")
    rows = read(path)
    assert [r["status"] for r in rows] == ["quarantined_invalid_unicode", "", ""]
    assert rows[0]["detail"] == f"{path}:1" and rows[0]["text"] == ""


def test_an_unforeseen_error_in_one_record_quarantines_that_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fragile(text: str) -> str:
        if "number 1 " in text:
            raise RuntimeError("boom")
        return text

    monkeypatch.setattr("strata.pipeline.read.normalize_text", fragile)
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(good_lines(3)) + b"\n")
    pq.write_table(pa.table({"text": [f"document number {i} " for i in range(3)]}), tmp_path / "docs.parquet")
    for file, where in ((path, f"{path}:2"), (tmp_path / "docs.parquet", f"{tmp_path / 'docs.parquet'}#1")):
        rows = read(file)
        assert [r["status"] for r in rows] == ["", "quarantined_record_error", ""]
        assert rows[1]["detail"] == where


def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b"\n".join(good_lines(2)) + b"\n")
    assert [r["id"] for r in read(jsonl)] == ["doc0", "doc1"]
    cirrus = tmp_path / "cirrus.json"
    cirrus.write_bytes(b'\xef\xbb\xbf{"index": {"_id": "1"}}\n' + good_lines(1)[0] + b"\n")
    assert [r["id"] for r in read(cirrus)] == ["doc0"]  # the index line is still recognised
    text = tmp_path / "page.txt"
    text.write_bytes(b"\xef\xbb\xbfHello there")
    assert read(text)[0]["text"] == "Hello there"
    pq.write_table(pa.table({"text": ["\ufeffHello there"]}), tmp_path / "docs.parquet")
    assert read(tmp_path / "docs.parquet")[0]["text"] == "Hello there"


def test_text_is_read_in_one_form(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    text = "Cafe\u0301 cre\u0300me\r\nline two\rline three\x00\x07 bell\tend"
    path.write_text(json.dumps({"id": "a", "text": text}) + "\n")
    assert read(path)[0]["text"] == "Café crème\nline two\nline three bell\tend"
    controls_only = tmp_path / "controls.txt"
    controls_only.write_bytes(b"\x00\x01\r\n\x7f")
    assert read(controls_only)[0]["status"] == "quarantined_empty_text"


def warc_records_of(data: bytes) -> list[bytes]:
    """The records of an uncompressed WARC, each with its trailing separator."""
    return [b"WARC/1.0" + part for part in data.split(b"WARC/1.0")[1:]]


def with_content_length(record: bytes, delta: int) -> bytes:
    def bump(match: re.Match[bytes]) -> bytes:
        return b"Content-Length: %d\r\n\r\nHTTP" % (int(match.group(1)) + delta)

    return re.sub(rb"Content-Length: (\d+)\r\n\r\nHTTP", bump, record, count=1)


@pytest.mark.parametrize("delta", [10, 200, -10, -200])
@pytest.mark.parametrize("compression", ["none", "per-record", "whole-file"])
def test_a_wrong_content_length_costs_one_record(tmp_path: Path, delta: int, compression: str) -> None:
    records = warc_records_of(gzip.decompress(WARC.read_bytes()))
    records[2] = with_content_length(records[2], delta)
    data = {
        "none": b"".join(records),
        "per-record": b"".join(gzip.compress(r) for r in records),
        "whole-file": gzip.compress(b"".join(records)),
    }[compression]
    path = tmp_path / ("bad.warc" if compression == "none" else "bad.warc.gz")
    path.write_bytes(data)
    rows = read(path)
    assert len(rows) == 12  # every record counted
    assert [r["status"] for r in rows].count("") == 11
    assert rows[2]["status"] == "quarantined_bad_content_length"
    assert [r["id"] for r in rows] == [r["id"] for r in read(WARC)]


def test_a_whole_file_gzip_warc_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "whole.warc.gz"
    path.write_bytes(gzip.compress(gzip.decompress(WARC.read_bytes())))
    rows = read(path)
    assert [r["id"] for r in rows] == [r["id"] for r in read(WARC)]
    assert all(r["status"] == "" for r in rows)


def site_warc(path: Path) -> None:
    """A small crawl of one site: a page, its stylesheet, script, logo, a text file and a request."""
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for name, media, body in [
            ("index.html", "text/html; charset=utf-8", b"<html><body><p>Hello</p></body></html>"),
            ("style.css", "text/css", b"body { color: red }"),
            ("app.js", "application/javascript", b"console.log('hi')"),
            ("logo.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            ("notes.txt", "text/plain", b"Plain notes."),
            ("empty", "", b"no type at all"),
        ]:
            headers = [("Content-Type", media)] if media else []
            http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
            url = f"https://example.org/{name}"
            writer.write_record(
                writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http)
            )
            writer.write_record(
                writer.create_warc_record(url, "request", payload=io.BytesIO(b"GET / HTTP/1.1\r\n\r\n"))
            )


def test_only_text_responses_are_documents_and_the_rest_counted_by_type(tmp_path: Path) -> None:
    path = tmp_path / "site.warc.gz"
    site_warc(path)
    rows = read(path, content_types=["text/html", "application/xhtml+xml", "text/plain"])
    assert [r["status"] for r in rows] == [
        "",
        "quarantined_content_type_text_css",
        "quarantined_content_type_application_javascript",
        "quarantined_content_type_image_svg_xml",
        "",
        "quarantined_content_type_none",
    ]
    assert [r["content"] for r in rows if r["status"] == ""] == ["html", "text"]
    wide = read(path, content_types=["text/*"])
    assert [r["status"] == "" for r in wide] == [True, True, False, False, True, False]


def test_a_named_file_of_unknown_format_fails_validation(tmp_path: Path) -> None:
    data = tmp_path / "corpus.dat"
    data.write_text('{"text": "hello"}\n')
    with pytest.raises(ValidationError, match=r"corpus.dat.*input.format"):
        InputSpec(paths=[str(data)])
    assert InputSpec(paths=[str(data)], format="jsonl").format == "jsonl"
    assert InputSpec(paths=[str(tmp_path)]).paths == [str(tmp_path)]  # a folder: unknown files are skipped
