"""Bad input records are quarantined with their reason and line; the reader never fails on them."""

from __future__ import annotations

import json
from pathlib import Path

from strata.pipeline.read import JsonlReader
from strata.spec.pipeline import InputSpec


def test_bad_records_are_quarantined_by_reason(tmp_path: Path) -> None:
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
    spec = InputSpec.model_construct(paths=[str(path)], text_key="text", id_key="id", max_doc_bytes=200)
    rows = JsonlReader(spec)({"path": str(path), "file_index": 0})
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
