"""Atomic file writes: a reader sees the old file or the whole new one, never a torn one.

Every file Strata writes that another step reads (manifests, shards, stats, checkpoints'
records, `model.pt`) goes through here: the data goes to a temporary name in the same
folder (so the rename stays on one file system) and is renamed over the target.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` when the block succeeds.

    For writers that take a path (`torch.save`, `savefig`, `write_parquet`): the suffix is
    kept (`x.png` → `x.tmp.png`) so writers that choose a format by suffix still do. On an
    error the temporary file is removed and `path` is untouched.
    """
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_file():
            tmp.unlink()


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary name in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write(path, text.encode("utf-8"))
