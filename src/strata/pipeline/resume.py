"""Finished stages, kept so that a rerun of a killed job skips them.

At each checkpoint of the stage registry (strata.pipeline.registry: after exact dedup,
`filtered`; after MinHash dedup, `deduplicated`) the rows are written as Parquet under
`<output.dir>/work/<checkpoint>/`, with the reports of the stages before it
(`_reports.json`), then a `_DONE` file holding the checkpoint's fingerprint: a hash of the
job sections of every stage up to it and of every input file's size and modification
time. A rerun loads a checkpoint whose fingerprint matches and recomputes one whose job
sections or inputs changed. A checkpoint is written to a temporary folder and renamed, so
a kill leaves it whole or absent; the rows are written sorted by input order, by the tasks
that sort them, and come back in that order, so the rest of the run, and its output, are
byte for byte those of an uninterrupted run (which goes on with the sorted rows it wrote).

Before the first checkpoint, the per-document stages keep their rows group by group of
input files (`work/documents/`, strata.pipeline.groups); this store names those files and
fingerprints each group by the per-document stages' sections and the group's own files.

Only a local output folder keeps checkpoints: a job whose `output.dir` is on object storage
writes none (it logs so), and a rerun of it starts over.
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

from strata.pipeline.blockwise import Blocks
from strata.pipeline.exchange import partitions, sort_by
from strata.pipeline.registry import DOCUMENT_STAGES, checkpoint_sections
from strata.spec.pipeline import PipelineJob
from strata.storage import Location

logger = logging.getLogger(__name__)
DONE = "_DONE"
REPORTS = "_reports.json"
GROUPS = "documents"  # work/documents/group-NNNNN.parquet and .json
Reports = dict[str, dict[str, Any]]


def _file_state(path: str) -> list[Any]:
    fs, root = fsspec.core.url_to_fs(path)
    info = fs.info(root)
    return [path, info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("ETag"))]


class StageStore:
    """The finished checkpoints of one output directory (none on object storage)."""

    def __init__(self, out: Location | Path, job: PipelineJob, files: list[str]) -> None:
        out = Location.of(out)
        self.root: Path | None = out.local_path() / "work" if out.is_local else None
        if self.root is None:
            logger.info("output %s is on object storage: no resume checkpoints; a rerun starts over", out)
        dumped = job.model_dump(mode="json")
        self.inputs = [_file_state(f) for f in files]
        self.fingerprints = {
            stage: _fingerprint(stage, {s: _section(dumped, s) for s in sections}, self.inputs)
            for stage, sections in checkpoint_sections().items()
        }
        self.group_sections = {stage.section: _section(dumped, stage.section) for stage in DOCUMENT_STAGES}

    def group_fingerprint(self, files: list[int]) -> str:
        """The fingerprint of a group of input files (their indexes) after the per-document stages."""
        return _fingerprint(GROUPS, self.group_sections, [self.inputs[i] for i in files])

    def group_part(self, number: int) -> Path | None:
        """Where group `number` keeps its rows (its marker: the same name, `.json`); None on
        object storage."""
        return None if self.root is None else self.root / GROUPS / f"group-{number:05d}.parquet"

    def finished_group(self, number: int, fingerprint: str) -> dict[str, Any] | None:
        """The report of group `number` when an earlier run finished it with this fingerprint."""
        part = self.group_part(number)
        marker = None if part is None else part.with_suffix(".json")
        if marker is None or not marker.is_file():
            return None
        written: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        if written.pop("fingerprint") != fingerprint:
            logger.info(
                "input group %d: job or inputs changed since it was written; running it again", number
            )
            return None
        return written

    def drop_groups(self) -> None:
        """Remove the groups' rows: the first checkpoint holds them now."""
        if self.root is not None:
            shutil.rmtree(self.root / GROUPS, ignore_errors=True)

    def load(self, stage: str) -> tuple[Blocks, Reports] | None:
        """The checkpoint's rows and stage reports from an earlier run of the same job on the
        same inputs, or None."""
        if self.root is None:
            return None
        done = self.root / stage / DONE
        if not done.is_file():
            return None
        if done.read_text(encoding="utf-8").strip() != self.fingerprints[stage]:
            logger.info("stage %s: job or inputs changed since it was written; running it again", stage)
            return None
        logger.info("stage %s: finished by an earlier run of this job; reading %s", stage, done.parent)
        # Written sorted by `order`, one zero-padded file name per sort task: read in name
        # order (Ray Data keeps it, `preserve_order`), the rows need no second sort.
        files = sorted(str(f) for f in done.parent.glob("*.parquet"))
        rows: Blocks = ray.data.read_parquet(files).materialize().to_arrow_refs()
        return rows, json.loads((done.parent / REPORTS).read_text(encoding="utf-8"))

    def save(self, stage: str, rows: Blocks, reports: Reports) -> tuple[Blocks, Reports]:
        """Sort the rows by input order (on Ray tasks: strata.pipeline.exchange.sort_by) and,
        with a local output folder, let those tasks write them as the checkpoint, then write
        its reports and fingerprint. Returns the sorted rows: the rows a rerun would read back."""
        tmp = None if self.root is None else self.root / f"{stage}.tmp"
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(tmp.with_name(stage), ignore_errors=True)
            tmp.mkdir(parents=True)
        blocks = sort_by(rows, "order", partitions(), write_dir=None if tmp is None else str(tmp))
        if not blocks:
            return rows, reports
        if tmp is not None:
            (tmp / REPORTS).write_text(json.dumps(reports), encoding="utf-8")
            (tmp / DONE).write_text(self.fingerprints[stage] + "\n", encoding="utf-8")
            tmp.rename(tmp.with_name(stage))
        return blocks, reports


def _fingerprint(name: str, sections: dict[str, Any], inputs: list[Any]) -> str:
    blob = json.dumps({"stage": name, "sections": sections, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _section(dumped: dict[str, Any], dotted: str) -> Any:
    value: Any = dumped
    for key in dotted.split("."):
        value = value[key]
    return value
