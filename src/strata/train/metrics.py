"""Training metrics: one JSON object per step in metrics.jsonl and TensorBoard scalars (rank 0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """JSON-lines log; `log` one row per step, `close` at the end.

    On a resumed run (`keep_steps` > 0) the rows up to that step are kept and the rest,
    written after the checkpoint the run resumes from, are dropped.
    """

    def __init__(self, path: Path, keep_steps: int = 0, tensorboard_dir: Path | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = (
            [r for r in read_metrics(path) if r["step"] <= keep_steps]
            if keep_steps and path.is_file()
            else []
        )
        self._file = path.open("w", encoding="utf-8")
        self._writer: Any = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops the events a failed attempt wrote after the resumed checkpoint.
            self._writer = SummaryWriter(
                log_dir=str(tensorboard_dir), purge_step=keep_steps + 1 if keep_steps else None
            )
        for row in kept:
            self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def log(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float):
                    tag = "validation/loss" if key == "val_loss" else f"train/{key}"
                    self._writer.add_scalar(tag, value, row["step"])
                elif isinstance(value, dict):  # tokens_by_source of a blend
                    for name, count in value.items():
                        self._writer.add_scalar(f"train/{key}/{name}", count, row["step"])
            self._writer.flush()

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
