"""The per-document stages: one task per group of input files, resumable group by group.

The leading stages of strata.pipeline.registry judge each row alone (read, URL filter,
extraction, language ID, quality rules, decontamination). They run as one chain in one Ray
task per group of `input.files_per_task` consecutive input files, as datatrove's tasks do:
the task reads its files, passes batches of BATCH_ROWS documents through every enabled
stage and yields the rows, dropped ones included, in blocks of about BLOCK_BYTES (a task
holds one block at a time, whatever the group's size). Ray Data then does only what needs
rows of several files together (exact and MinHash dedup, the shards' shuffle). The driver
holds the blocks' object references and one small report per group, never rows.

With a local `output.dir`, a finished group's rows go to `work/documents/group-NNNNN.parquet`
and then its marker `group-NNNNN.json` (fingerprint and report; groups count from 1): a rerun of a killed job
reads the groups whose marker matches (the log names them) and runs only the others. The
fingerprint covers the job sections of these stages and the group's files (path, size,
modification time: strata.pipeline.resume). Once the next checkpoint (`filtered`) is
written, the groups' files are removed. On object storage nothing is kept between runs.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from strata.files import atomic_path, atomic_write_text
from strata.pipeline.blockwise import Blocks
from strata.pipeline.documents import Batch, shed_dropped_text
from strata.pipeline.read import DocumentReader, Row
from strata.pipeline.registry import DOCUMENT_STAGES, RowStage, Stage, record_drops, with_defaults
from strata.pipeline.resume import Reports, StageStore
from strata.spec.pipeline import PipelineJob

logger = logging.getLogger(__name__)
BATCH_ROWS = 1000  # documents per batch through the chain: a few MiB of text
BLOCK_BYTES = 32 << 20  # rows per object a group's task yields (Ray Data's blocks downstream)
PROGRESS_EVERY_S = 30.0


class DocumentChain:
    """The enabled per-row stages of a job, built on the driver (block lists and benchmark
    n-grams are read there) and run in each group's task."""

    def __init__(self, job: PipelineJob) -> None:
        self.reader = DocumentReader(job.input)
        self.stages: list[tuple[Stage, RowStage]] = []
        for stage in DOCUMENT_STAGES[1:]:
            if stage.enabled(job):
                assert stage.per_row is not None, stage.name  # the registry's layout
                self.stages.append((stage, stage.per_row(stage.spec(job))))

    def tables(self, files: list[tuple[int, str]], counts: dict[str, dict[str, int]]) -> Iterator[pa.Table]:
        """The rows of `files` ((file index, path) pairs) after every stage, in input order, one
        table per batch; adds each stage's report counts to `counts`."""
        for rows in _batches(self.reader, files):
            batch = record_drops(DOCUMENT_STAGES[0].name)(with_defaults(_columns(rows)))
            for stage, apply in self.stages:
                batch = record_drops(stage.name)(apply(batch))
                for column, key in stage.counts.items():
                    report = counts.setdefault(stage.name, {})
                    report[key] = report.get(key, 0) + int(batch.pop(column).sum())
            yield shed_dropped_text(pa.Table.from_pydict(batch))


def _batches(reader: DocumentReader, files: list[tuple[int, str]]) -> Iterator[list[Row]]:
    rows: list[Row] = []
    for index, path in files:
        for row in reader({"path": path, "file_index": index}):
            rows.append(row)
            if len(rows) == BATCH_ROWS:
                yield rows
                rows = []
    if rows:
        yield rows


def _columns(rows: list[Row]) -> Batch:
    """Rows (dicts of the same keys) → numpy columns as Ray Data's numpy batches hold them."""
    batch: Batch = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        batch[key] = np.array(values, dtype=np.int64 if isinstance(values[0], int) else object)
    return batch


def _blocks(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The chain's batches joined into blocks of about BLOCK_BYTES (the last may be smaller)."""
    pending: list[pa.Table] = []
    for table in tables:
        pending.append(table)
        if sum(t.nbytes for t in pending) >= BLOCK_BYTES:
            yield _concat(pending)
            pending = []
    if pending:
        yield _concat(pending)


def _concat(tables: list[pa.Table]) -> pa.Table:
    schema = tables[0].schema  # a batch whose column is all empty may infer another type
    return pa.concat_tables([t if t.schema == schema else t.cast(schema) for t in tables])


def _written(blocks: Iterator[pa.Table], path: Path) -> Iterator[pa.Table]:
    """The blocks, each also written to `path` as one Parquet row group; the file appears
    whole once the last block is out (strata.files.atomic_path), and not at all for none."""
    first = next(blocks, None)
    if first is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, first.schema) as writer:
        for block in itertools.chain([first], blocks):
            writer.write_table(block.cast(writer.schema), row_group_size=block.num_rows)
            yield block


@ray.remote(num_returns="streaming")
def _run_group(
    chain: DocumentChain, files: list[tuple[int, str]], part: str | None, fingerprint: str
) -> Iterator[pa.Table | dict[str, Any]]:
    """Yield one group's rows block by block, then its report; with `part`, also write the
    blocks there (one Parquet row group each), then the group's marker beside it. A block
    is in memory at a time: every yielded one goes to Ray's object store, owned by the driver."""
    counts: dict[str, dict[str, int]] = {}
    blocks = _blocks(chain.tables(files, counts))
    if part is not None:
        blocks = _written(blocks, Path(part))
    rows = 0
    for block in blocks:
        rows += block.num_rows
        yield block
    report = {"rows": rows, "counts": counts}
    if part is not None:
        marker = Path(part).with_suffix(".json")
        marker.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(marker, json.dumps({"fingerprint": fingerprint, **report}))
    yield report


@ray.remote(num_returns="streaming")
def _load_group(part: str, report: dict[str, Any]) -> Iterator[pa.Table | dict[str, Any]]:
    """A group an earlier run finished: its blocks as that run yielded them, then its report."""
    if report["rows"]:
        file = pq.ParquetFile(part)
        for index in range(file.num_row_groups):
            yield file.read_row_group(index)
    yield report


def document_rows(job: PipelineJob, paths: list[str], store: StageStore) -> tuple[Blocks, Reports]:
    """Every document of `paths` after the per-row stages (kept, or with the reason it was
    dropped), in input order, as the blocks of the groups' tasks (none when the files hold no
    record; no block is empty), and those stages' reports."""
    per_task = job.input.files_per_task
    groups = [list(enumerate(paths))[i : i + per_task] for i in range(0, len(paths), per_task)]
    chain = ray.put(DocumentChain(job))
    running: list[Any] = []  # one ObjectRefGenerator per group
    for number, files in enumerate(groups, start=1):
        fingerprint = store.group_fingerprint([index for index, _ in files])
        part = store.group_part(number)
        finished = store.finished_group(number, fingerprint)
        if finished is not None and part is not None:
            logger.info(
                "input group %d of %d (%s): finished by an earlier run; reading %s",
                number, len(groups), _names(files), part,
            )  # fmt: skip
            running.append(_load_group.remote(str(part), finished))
        else:
            running.append(_run_group.remote(chain, files, None if part is None else str(part), fingerprint))
    blocks, reports, last = [], [], time.monotonic()
    for number, generator in enumerate(running, start=1):
        refs = list(generator)  # returns when the group's task has yielded its report
        blocks.extend(refs[:-1])
        reports.append(ray.get(refs[-1]))
        if time.monotonic() - last >= PROGRESS_EVERY_S and number < len(running):
            logger.info("per-document stages: %d of %d input groups done", number, len(running))
            last = time.monotonic()
    return blocks, _stage_reports(job, reports)


def _names(files: list[tuple[int, str]]) -> str:
    names = [Path(path).name for _, path in files]
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}, {len(names)} files"


def _stage_reports(job: PipelineJob, reports: list[dict[str, Any]]) -> Reports:
    """The per-row stages' reports: counts summed over the groups; a stage that is off reports
    its `report_when_off`."""
    out: Reports = {}
    for stage in DOCUMENT_STAGES:
        if not stage.enabled(job):
            out[stage.name] = dict(stage.report_when_off)
            continue
        out[stage.name] = {key: 0 for key in stage.counts.values()}
        for report in reports:
            for key, n in report["counts"].get(stage.name, {}).items():
                out[stage.name][key] += n
    return out
