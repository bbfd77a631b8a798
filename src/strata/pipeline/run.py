"""Build and run the pipeline on Ray Data from a PipelineJob.

Stages, each switched by the job file: collect (downloads), then the document stages of
strata.pipeline.registry (read → extract (HTML) → language ID → quality rules → exact dedup
→ MinHash dedup), then tokenizer → tokenize → rehydrate → balance → shards. Every row
keeps a `status`; a stage that drops a row writes its reason there and its own name in
`dropped_by`, so every drop is counted at the end. When no document survives (or none was
read), the job writes its stats and side files and raises JobError naming the drops.

Outputs under `output.dir`: `shards/` (see strata.pipeline.shards), `tokenizer.json`,
`stats/pipeline.json` and `stats/pipeline.png` (see strata.pipeline.stats),
`quarantine.jsonl` (bad input records with their source and offset) and
`duplicates.jsonl` (every removed duplicate with the id of the kept document), and
`work/` (finished stages, so a rerun of a killed job skips them: strata.pipeline.resume).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import ray

from strata.errors import JobError
from strata.files import atomic_write
from strata.pipeline.balance import copies, group_key, rehydrated_copies, sampling_rates
from strata.pipeline.collect import collect
from strata.pipeline.documents import KEPT
from strata.pipeline.read import input_files
from strata.pipeline.registry import STAGES, Stage, partitions, record_drops
from strata.pipeline.resume import Reports, StageStore
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.pipeline.stats import NO_TOKENS, pipeline_stats, plot_stats
from strata.pipeline.tokenize import END_OF_TEXT, CountTokens, Tokenize, train_tokenizer
from strata.spec.pipeline import PipelineJob

logger = logging.getLogger(__name__)
BLOCK_BYTES = 1 << 20
ROW_COLUMNS = [
    "id", "source", "order", "status", "dropped_by", "detail", "duplicate_of", "language", "cluster_size",
    "token_count",
]  # fmt: skip


def _configure_ray_data() -> None:
    """Deterministic order; small blocks and one shuffle partition per CPU.

    Text stages cost milliseconds per document, so 1 MiB blocks spread even one input
    file over every CPU; Ray's default of 200 partitions per shuffle costs more than the
    work on anything but very large inputs.
    """
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.target_max_block_size = BLOCK_BYTES
    ctx.default_hash_shuffle_parallelism = partitions()
    ctx.min_parallelism = partitions()


def _files(paths: list[str]) -> ray.data.Dataset:
    """One row {path, file_index} per input file, in many small blocks so that files spread
    evenly over the workers."""
    files = [{"path": p, "file_index": i} for i, p in enumerate(paths)]
    logger.info("reading %d input files", len(files))
    return ray.data.from_items(files, override_num_blocks=min(len(files), 16 * partitions()))


def _latest_checkpoint(store: StageStore) -> tuple[int, ray.data.Dataset, Reports] | None:
    """The last registry stage an earlier run of this job finished, with its rows and reports."""
    for index in reversed(range(len(STAGES))):
        checkpoint = STAGES[index].checkpoint
        loaded = store.load(checkpoint) if checkpoint else None
        if loaded is not None:
            return index + 1, *loaded
    return None


def _apply(stage: Stage, job: PipelineJob, ds: ray.data.Dataset) -> tuple[ray.data.Dataset, dict[str, Any]]:
    if not stage.enabled(job):
        return ds, dict(stage.report_when_off)
    ds, report = stage.apply(ds, stage.spec(job))
    return ds.map_batches(record_drops(stage.name), batch_format="numpy"), report


def _document_rows(job: PipelineJob, store: StageStore, paths: list[str]) -> tuple[ray.data.Dataset, Reports]:
    """Every document after the registry's stages (kept or with the reason it was dropped), and
    the stages' reports. Starts after the last checkpoint an earlier run finished; stops early,
    before any checkpoint is written, when the input holds no document."""
    start, ds, reports = _latest_checkpoint(store) or (0, _files(paths), {})
    for stage in STAGES[start:]:
        ds, reports[stage.name] = _apply(stage, job, ds)
        if stage.checkpoint:
            ds = ds.sort("order").materialize()
            if ds.count() == 0:
                return ds, reports
            ds, reports = store.save(stage.checkpoint, ds, reports)
            logger.info("checkpoint %s: %d documents written", stage.checkpoint, ds.count())
    return ds, reports


def _kept(ds: ray.data.Dataset) -> ray.data.Dataset:
    kept: ray.data.Dataset = ds.filter(lambda r: r["status"] == KEPT).materialize()
    return kept


def _texts(ds: ray.data.Dataset) -> Iterator[str]:
    for batch in ds.select_columns(["text"]).iter_batches(batch_format="numpy", batch_size=1024):
        yield from (str(t) for t in batch["text"])


def _columns(ds: ray.data.Dataset, columns: list[str]) -> dict[str, list[Any]]:
    """Gather some columns of the whole dataset to the driver, in dataset order."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for batch in ds.select_columns(columns).iter_batches(batch_format="numpy", batch_size=4096):
        for c in columns:
            out[c].extend(batch[c])
    return out


def _tokenize(
    kept: ray.data.Dataset, tokenizer_path: Path
) -> tuple[list[str], list[int], list[TokenizedDocument]]:
    tokenized = kept.map_batches(Tokenize(str(tokenizer_path)), batch_format="numpy")
    rows = _columns(tokenized, ["id", "cluster_size", "language", "source", "tokens"])
    docs = [
        TokenizedDocument(np.asarray(t, dtype=np.uint16), str(lang), str(src))
        for t, lang, src in zip(rows["tokens"], rows["language"], rows["source"], strict=True)
    ]
    return [str(i) for i in rows["id"]], [int(c) for c in rows["cluster_size"]], docs


def _rehydrate(
    table: dict[int, int], ids: list[str], sizes: list[int], docs: list[TokenizedDocument]
) -> tuple[list[str], list[TokenizedDocument], dict[str, Any]]:
    """Repeat each kept document by its cluster size's entry in the table (FineWeb-2)."""
    out_ids: list[str] = []
    out_docs: list[TokenizedDocument] = []
    for doc_id, size, doc in zip(ids, sizes, docs, strict=True):
        n = rehydrated_copies(size, table)
        out_ids += [doc_id] * n
        out_docs += [doc] * n
    info = {"documents_before": len(docs), "documents_after": len(out_docs)}
    logger.info("rehydrated %d documents into %d", len(docs), len(out_docs))
    return out_ids, out_docs, info


def _balance(
    job: PipelineJob, ids: list[str], docs: list[TokenizedDocument]
) -> tuple[list[TokenizedDocument], dict[str, Any]]:
    groups = [group_key(d.language, d.source, job.balance.by) for d in docs]
    before: dict[str, int] = {}
    for g, d in zip(groups, docs, strict=True):
        before[g] = before.get(g, 0) + len(d.tokens)
    rates = sampling_rates(before, job.balance)
    balanced: list[TokenizedDocument] = []
    for copy_no, (doc_id, g, d) in enumerate(zip(ids, groups, docs, strict=True)):
        # A rehydrated document's copies draw independently: the key includes the copy's position.
        key = doc_id if not job.dedup.minhash.rehydrate else f"{doc_id}\0{copy_no}"
        balanced.extend([d] * copies(key, rates[g], job.seed))
    after: dict[str, int] = {}
    for d in balanced:
        g = group_key(d.language, d.source, job.balance.by)
        after[g] = after.get(g, 0) + len(d.tokens)
    info = {
        "alpha": job.balance.alpha,
        "token_budget": job.balance.token_budget,
        "groups": {
            g: {"tokens_before": before[g], "rate": round(rates[g], 6), "tokens_after": after.get(g, 0)}
            for g in sorted(before)
        },
    }
    logger.info("balanced %d groups: %d → %d tokens", len(before), sum(before.values()), sum(after.values()))
    return balanced, info


def _input_paths(job: PipelineJob, out: Path) -> list[str]:
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
    out = Path(job.output.dir)
    (out / "stats").mkdir(parents=True, exist_ok=True)
    _configure_ray_data()

    paths = _input_paths(job, out)
    ds, reports = _document_rows(job, StageStore(out, job, paths), paths)
    kept = _kept(ds)
    if kept.count() == 0:
        rows = _columns(ds, ROW_COLUMNS[:-1]) if ds.count() else {c: [] for c in ROW_COLUMNS}
        rows["token_count"] = [0] * len(rows["id"])
        _write_side_files(out, rows)
        stats = _write_stats(
            job=job, out=out, rows=rows, manifest=NO_TOKENS, reports=reports, balance={}, started=started
        )
        raise JobError(_nothing_kept(job, stats, len(paths), out))

    tokenizer_path = out / "tokenizer.json"
    tokenizer = train_tokenizer(_texts(kept), job.tokenizer, tokenizer_path)
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    if eot_id is None:
        raise JobError(f"{tokenizer_path}: the tokenizer lacks {END_OF_TEXT}; delete the file and rerun")
    logger.info("trained a %d-token BPE on %d documents", tokenizer.get_vocab_size(), kept.count())
    ids, sizes, docs = _tokenize(kept, tokenizer_path)
    rehydration: dict[str, Any] = {}
    if job.dedup.minhash.rehydrate:
        ids, docs, rehydration = _rehydrate(job.dedup.minhash.rehydrate, ids, sizes, docs)
    reports["minhash_dedup"]["rehydration"] = rehydration
    balance: dict[str, Any] = {}
    if job.balance.enabled:
        docs, balance = _balance(job, ids, docs)
    manifest = write_shards(
        docs=docs,
        out_dir=out / "shards",
        tokens_per_shard=job.shards.tokens_per_shard,
        seed=job.seed,
        vocab_size=tokenizer.get_vocab_size(),
        eot_id=eot_id,
    )
    rows = _columns(ds.map_batches(CountTokens(str(tokenizer_path)), batch_format="numpy"), ROW_COLUMNS)
    _write_side_files(out, rows)
    stats = _write_stats(
        job=job, out=out, rows=rows, manifest=manifest, reports=reports, balance=balance, started=started
    )
    logger.info("wrote %d tokens in %d shards to %s", manifest["total_tokens"], len(manifest["shards"]), out)
    return stats


def _write_stats(
    *,
    job: PipelineJob,
    out: Path,
    rows: dict[str, list[Any]],
    manifest: dict[str, Any],
    reports: Reports,
    balance: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    stats = pipeline_stats(
        job=job,
        rows=rows,
        manifest=manifest,
        reports=reports,
        balance=balance,
        seconds=time.monotonic() - started,
    )
    atomic_write(out / "stats" / "pipeline.json", json.dumps(stats, indent=2).encode("utf-8"))
    plot_stats(stats, out / "stats" / "pipeline.png")
    return stats


def _nothing_kept(job: PipelineJob, stats: dict[str, Any], files: int, out: Path) -> str:
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


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def _write_side_files(out: Path, rows: dict[str, list[Any]]) -> None:
    statuses = [str(s) for s in rows["status"]]
    quarantined = [
        {"source": str(d), "reason": s.removeprefix("quarantined_")}
        for d, s in zip(rows["detail"], statuses, strict=True)
        if s.startswith("quarantined_")
    ]
    duplicates = [
        {"id": str(i), "duplicate_of": str(k), "kind": s.removeprefix("dropped_").removesuffix("_duplicate")}
        for i, k, s in zip(rows["id"], rows["duplicate_of"], statuses, strict=True)
        if s.endswith("_duplicate")
    ]
    atomic_write(out / "quarantine.jsonl", _jsonl(quarantined))
    atomic_write(out / "duplicates.jsonl", _jsonl(duplicates))
