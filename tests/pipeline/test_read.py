"""Readers for every input format: stable ids, and bad records or broken files quarantined by
reason with their source and offset, never fatal."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

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
