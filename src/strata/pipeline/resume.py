"""Finished stages, kept so that a rerun of a killed job skips them.

After the expensive stages (reading through exact dedup; MinHash dedup) the rows are
written as Parquet under `<output.dir>/work/<stage>/`, then a `_DONE` file holding the
stage's fingerprint: a hash of the job sections that shape the stage and of every input
file's size and modification time. A rerun loads a stage whose fingerprint matches and
recomputes one whose job sections or inputs changed. A stage is written to a temporary
folder and renamed, so a kill leaves it whole or absent; the rows come back sorted by
input order, so the rest of the run, and its output, are byte for byte those of an
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import fsspec
import ray

from strata.spec.pipeline import PipelineJob

logger = logging.getLogger(__name__)
DONE = "_DONE"
# The job sections each stage's rows depend on (the stage itself and everything before it).
STAGE_SECTIONS = {
    "filtered": ["input", "extract", "language", "quality", "dedup.exact"],
    "deduplicated": ["input", "extract", "language", "quality", "dedup.exact", "dedup.minhash"],
}


def _file_state(path: str) -> list[Any]:
    fs, root = fsspec.core.url_to_fs(path)
    info = fs.info(root)
    return [path, info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("ETag"))]


class StageStore:
    """The finished stages of one output directory."""

    def __init__(self, out: Path, job: PipelineJob, files: list[str]) -> None:
        self.root = out / "work"
        dumped = job.model_dump(mode="json")
        inputs = [_file_state(f) for f in files]
        self.fingerprints = {}
        for stage, sections in STAGE_SECTIONS.items():
            parts = {s: _section(dumped, s) for s in sections}
            blob = json.dumps({"stage": stage, "sections": parts, "inputs": inputs}, sort_keys=True)
            self.fingerprints[stage] = hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def load(self, stage: str) -> ray.data.Dataset | None:
        """The stage's rows from an earlier run of the same job on the same inputs, or None."""
        done = self.root / stage / DONE
        if not done.is_file():
            return None
        if done.read_text(encoding="utf-8").strip() != self.fingerprints[stage]:
            logger.info("stage %s: job or inputs changed since it was written; running it again", stage)
            return None
        logger.info("stage %s: finished by an earlier run of this job; reading %s", stage, done.parent)
        result: ray.data.Dataset = ray.data.read_parquet(str(done.parent)).sort("order").materialize()
        return result

    def save(self, stage: str, ds: ray.data.Dataset) -> ray.data.Dataset:
        """Write the stage's rows, then its fingerprint; return them as read back."""
        final = self.root / stage
        tmp = self.root / f"{stage}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        ds.write_parquet(str(tmp))
        (tmp / DONE).write_text(self.fingerprints[stage] + "\n", encoding="utf-8")
        tmp.rename(final)
        loaded = self.load(stage)
        if loaded is None:
            raise RuntimeError(f"{final}: written but not readable back")
        return loaded


def _section(dumped: dict[str, Any], dotted: str) -> Any:
    value: Any = dumped
    for key in dotted.split("."):
        value = value[key]
    return value
