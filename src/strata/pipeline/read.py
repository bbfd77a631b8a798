"""Read JSONL files into document rows; bad records are quarantined, never fatal."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from strata.pipeline.documents import KEPT
from strata.spec.pipeline import InputSpec

logger = logging.getLogger(__name__)
LINES_PER_FILE = 1_000_000_000  # order = file index * this + line number


class JsonlReader:
    """Ray Data flat_map stage: one input row {path, file_index} → its documents.

    A record that is not valid UTF-8 or JSON, lacks the text field, has empty text,
    or exceeds `max_doc_bytes` becomes a row with status `quarantined_<reason>` and
    a `detail` naming its source and line, written to the quarantine file later.
    """

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec

    def __call__(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        path, file_index = Path(item["path"]), int(item["file_index"])
        rows = []
        with path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                rows.append(self._parse(raw, path, file_index, line_no))
        logger.info("read %d records from %s", len(rows), path)
        return rows

    def _parse(self, raw: bytes, path: Path, file_index: int, line_no: int) -> dict[str, Any]:
        where = f"{path}:{line_no}"
        row = {"id": where, "source": str(path), "order": file_index * LINES_PER_FILE + line_no}
        status, record = self._decode(raw)
        value = record.get(self.spec.text_key) if isinstance(record, dict) else None
        text = value if isinstance(value, str) else ""
        if status == KEPT and not isinstance(value, str):
            status = "quarantined_no_text"
        elif status == KEPT and not text.strip():
            status = "quarantined_empty_text"
        if status == KEPT:
            if self.spec.id_key and record.get(self.spec.id_key) is not None:
                row["id"] = str(record[self.spec.id_key])
            row["source"] = str(record.get("source", path))
        return {**row, "text": text if status == KEPT else "", "status": status, "detail": where}

    def _decode(self, raw: bytes) -> tuple[str, Any]:
        if len(raw) > self.spec.max_doc_bytes:
            return "quarantined_too_large", None
        try:
            return KEPT, json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return "quarantined_invalid_utf8", None
        except json.JSONDecodeError:
            return "quarantined_invalid_json", None
