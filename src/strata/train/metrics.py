"""Training metrics: one JSON object per step in metrics.jsonl (written by rank 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """JSON-lines log; `log` one row per step, `close` at the end.

    On a resumed run (`keep_steps` > 0) the rows up to that step are kept and the rest,
    written after the checkpoint the run resumes from, are dropped.
    """

    def __init__(self, path: Path, keep_steps: int = 0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = (
            [r for r in read_metrics(path) if r["step"] <= keep_steps]
            if keep_steps and path.is_file()
            else []
        )
        self._file = path.open("w", encoding="utf-8")
        for row in kept:
            self.log(row)

    def log(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
