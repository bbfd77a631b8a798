"""Build and run the pipeline on Ray from a PipelineJob.

Stages, each switched by the job file: collect (downloads), then the document stages of
strata.pipeline.registry (read → extract (HTML) → language ID → quality rules → exact dedup
→ MinHash dedup), then tokenizer (trained, or the file of `tokenizer.path`:
strata.pipeline.tokenize) → tokenize → rehydrate → balance → shards
(strata.pipeline.assemble). Everything after dedup runs on the Ray workers too: the driver
receives aggregates (token totals per group, one record per shard, the stats' counts per
stage, status and language) and, when it trains one, the tokenizer's bounded training
sample. The rows travel as their blocks (Arrow tables in Ray's object store) between and
within stages (plain tasks: strata.pipeline.blockwise, strata.pipeline.exchange): wrapping
them in a Ray Dataset costs Ray Data ~0.1 s of metadata tasks each time. Every row keeps a
`status`; a stage that drops a row writes its reason there and its own name in `dropped_by`
(and the row sheds its text), so every drop is counted at the end. When no document survives (or
none was read), the job writes its stats and side files and raises JobError naming the drops.

Outputs under `output.dir`: `shards/` (see strata.pipeline.shards), `tokenizer.json` (trained or
copied), `stats/pipeline.json` and `stats/pipeline.png` (see strata.pipeline.stats),
`quarantine.jsonl` and `duplicates.jsonl` (strata.pipeline.side_files), and
`work/` (finished stages, so a rerun of a killed job skips them: strata.pipeline.resume).
`input.paths` and `output.dir` may be object-storage URIs (`s3://bucket/prefix`, through
strata.storage): before any work the inputs are listed and the output is written to once,
so a missing object or prefix and a denied bucket are refused naming the URI; the workers
then read and write the objects themselves, with the credentials of their own environment.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import ray

from strata.errors import JobError
from strata.pipeline.assemble import tokenize, tokenizer_sample, write_balanced_shards
from strata.pipeline.blockwise import Blocks, count_rows, map_blocks
from strata.pipeline.collect import collect
from strata.pipeline.dedup.semantic import checked_dimension
from strata.pipeline.documents import kept_table, shed_dropped_text
from strata.pipeline.exchange import partitions
from strata.pipeline.groups import document_rows
from strata.pipeline.read import input_files
from strata.pipeline.registry import DOCUMENT_STAGES, STAGES, Stage, record_drops_in_table
from strata.pipeline.resume import Reports, StageStore
from strata.pipeline.side_files import write_side_files
from strata.pipeline.stats import (
    NO_TOKENS,
    dropped_row_counts,
    kept_row_counts,
    pipeline_stats,
    sorted_counts,
)
from strata.pipeline.stats_plot import plot_stats
from strata.pipeline.tokenize import provide_tokenizer
from strata.spec.pipeline import PipelineJob
from strata.storage import Location

logger = logging.getLogger(__name__)
BLOCK_BYTES = 16 << 20


def _configure_ray_data() -> None:
    """Deterministic order; blocks of at most 16 MiB.

    The per-document stages run in the groups' tasks (strata.pipeline.groups), and the
    Dataset stages get at least one block per CPU from the regroupings before them
    (strata.pipeline.exchange), so Ray Data's maps need no small blocks to spread the work.
    Each block costs the driver bookkeeping (a task, object references, metadata): with
    1 MiB blocks the driver's peak grew 339 → 475 MiB from 40.8 to 653 MB of input, with
    16 MiB blocks it stayed near its 1× peak, and the 653 MB run took 0.6× the time
    (docs/benchmarks.md).
    """
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.target_max_block_size = BLOCK_BYTES
    ctx.min_parallelism = partitions()


def _latest_checkpoint(store: StageStore) -> tuple[int, Blocks, Reports] | None:
    """The last registry stage an earlier run of this job finished, with its rows and reports."""
    for index in reversed(range(len(STAGES))):
        checkpoint = STAGES[index].checkpoint
        loaded = store.load(checkpoint) if checkpoint else None
        if loaded is not None:
            return index + 1, *loaded
    return None


def _apply(stage: Stage, job: PipelineJob, rows: Blocks, out: Location) -> tuple[Blocks, dict[str, Any]]:
    if not stage.enabled(job):
        return rows, dict(stage.report_when_off)
    assert stage.apply is not None, stage.name  # the registry's layout: DATASET_STAGES apply
    started = time.monotonic()
    rows, report = stage.apply(rows, stage.spec(job), out)
    recorded = map_blocks(rows, record_drops_in_table(stage.name), shed_dropped_text).blocks
    logger.info("stage %s: done in %.1f s", stage.name, time.monotonic() - started)  # its rows are computed
    return recorded, report


def _document_rows(
    job: PipelineJob, out: Location, store: StageStore, paths: list[str]
) -> tuple[Blocks, Reports]:
    """Every document after the registry's stages (kept or with the reason it was dropped), and
    the stages' reports. Starts after the last checkpoint an earlier run finished (else with
    the per-document stages, group by group: strata.pipeline.groups); stops early, before any
    checkpoint is written, when the input holds no document."""
    latest = _latest_checkpoint(store)
    if latest is None:
        rows, reports = document_rows(job, paths, store)
        if not rows:  # the groups yield no block without rows
            return rows, reports
        start = len(DOCUMENT_STAGES)
    else:
        start, rows, reports = latest
    for stage in STAGES[start:]:
        rows, reports[stage.name] = _apply(stage, job, rows, out)
        # A switched-off stage changed no row: what it would write is on disk already (the
        # groups' parts or the previous checkpoint), and a rerun starts from that.
        if stage.checkpoint and stage.enabled(job):
            rows, reports = store.save(stage.checkpoint, rows, reports)
            store.drop_groups()
            logger.info("checkpoint %s: %d documents written", stage.checkpoint, count_rows(rows))
    return rows, reports


def _input_paths(job: PipelineJob, out: Location) -> list[str]:
    """Collect the job's sources (if any), then list every file to read."""
    sources = list(job.input.paths)
    if job.collect.has_sources:
        collect(job.collect, out / "stats" / "collect.json")
    if job.collect.dir:
        sources.append(job.collect.dir)
    return input_files(job.input.model_copy(update={"paths": sources}))


def run_pipeline(job: PipelineJob) -> dict[str, Any]:
    """Run every enabled stage; return the stats that are also written to stats/pipeline.json.

    Raises JobError, after writing the stats, when no document survives the stages.
    """
    started = time.monotonic()
    out = Location(job.output.dir)
    out.check_writable()
    _configure_ray_data()

    if job.dedup.semantic.enabled:
        checked_dimension(job.dedup.semantic)  # a model that does not load stops the job now
    paths = _input_paths(job, out)
    rows, reports = _document_rows(job, out, StageStore(out, job, paths), paths)
    kept = map_blocks(rows, kept_table)
    if kept.count() == 0:
        write_side_files(out, rows)
        counts = sorted_counts(dropped_row_counts(rows))
        stats = _write_stats(
            job=job, out=out, counts=counts, manifest=NO_TOKENS, reports=reports, balance={}, started=started
        )
        raise JobError(_nothing_kept(job, stats, len(paths), out))

    tokenizer_path = out / "tokenizer.json"
    kept_blocks = kept.non_empty()
    sample = tokenizer_sample(kept_blocks, job.tokenizer.train_sample_bytes, job.seed)
    tokenizer = provide_tokenizer(job.tokenizer, sample, tokenizer_path)
    tokenized = tokenize(kept_blocks, tokenizer_path, tokenizer)
    manifest, rehydration, balance = write_balanced_shards(
        job, tokenized, out_dir=out / "shards", tokenizer=tokenizer
    )
    reports["minhash_dedup"]["rehydration"] = rehydration
    write_side_files(out, rows)
    counts = sorted_counts(dropped_row_counts(rows) + kept_row_counts(tokenized))
    stats = _write_stats(
        job=job, out=out, counts=counts, manifest=manifest, reports=reports, balance=balance, started=started
    )
    logger.info("wrote %d tokens in %d shards to %s", manifest["total_tokens"], len(manifest["shards"]), out)
    return stats


def _write_stats(
    *,
    job: PipelineJob,
    out: Location,
    counts: list[dict[str, Any]],
    manifest: dict[str, Any],
    reports: Reports,
    balance: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    stats = pipeline_stats(
        job=job,
        counts=counts,
        manifest=manifest,
        reports=reports,
        balance=balance,
        seconds=time.monotonic() - started,
    )
    (out / "stats" / "pipeline.json").write_text(json.dumps(stats, indent=2))
    plot_stats(stats, out / "stats" / "pipeline.png")
    return stats


def _nothing_kept(job: PipelineJob, stats: dict[str, Any], files: int, out: Location) -> str:
    """One line: what dropped every document, and where to look."""
    where = f"every count is in {out / 'stats' / 'pipeline.json'}"
    total = stats["documents"]["total"]
    if total == 0:
        return f"pipeline {job.name}: the {files} input file(s) hold no documents (input.paths); {where}"
    drops = []
    for stage in STAGES:
        figures = stats["stages"][stage.name]
        if figures["dropped"]:
            reasons = ", ".join(f"{r} {n}" for r, n in figures["dropped_by_reason"].items())
            drops.append(f"{stage.section} {figures['dropped']} ({reasons})")
    return (
        f"pipeline {job.name}: no document of {total} survived; dropped by {'; '.join(drops)}. "
        f"Loosen the thresholds of those sections (or fix the input: quarantine.jsonl); {where}"
    )
