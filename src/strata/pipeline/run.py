"""Build and run the pipeline on Ray Data from a PipelineJob.

Stages, each switched by the job file: collect (downloads) → read → extract (HTML) → language ID → quality
(Gopher repetition, Gopher quality, C4, FineWeb) → exact dedup → MinHash dedup →
tokenizer → tokenize → rehydrate → balance → shards. Every row keeps a `status`; a stage that drops
a row writes its reason there, so every drop is counted at the end.

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
import pandas as pd
import ray

from strata.files import atomic_write
from strata.pipeline.balance import copies, group_key, rehydrated_copies, sampling_rates
from strata.pipeline.collect import collect
from strata.pipeline.dedup.clusters import BandRows, bucket_edges, connected_components
from strata.pipeline.dedup.exact import add_text_hash, mark_exact_duplicates
from strata.pipeline.dedup.minhash import MinhashSignatures, count_without_shingles
from strata.pipeline.documents import KEPT
from strata.pipeline.extract import ExtractMainText
from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.language import IdentifyLanguage
from strata.pipeline.read import DocumentReader, input_files
from strata.pipeline.resume import StageStore
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.pipeline.stats import pipeline_stats, plot_stats
from strata.pipeline.tokenize import END_OF_TEXT, CountTokens, Tokenize, train_tokenizer
from strata.spec.pipeline import PipelineJob

logger = logging.getLogger(__name__)
BLOCK_BYTES = 1 << 20
ROW_COLUMNS = [
    "id", "source", "order", "status", "detail", "duplicate_of", "language", "cluster_size", "token_count",
]  # fmt: skip


def _partitions() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


def _configure_ray_data() -> None:
    """Deterministic order; small blocks and one shuffle partition per CPU.

    Text stages cost milliseconds per document, so 1 MiB blocks spread even one input
    file over every CPU; Ray's default of 200 partitions per shuffle costs more than the
    work on anything but very large inputs.
    """
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.target_max_block_size = BLOCK_BYTES
    ctx.default_hash_shuffle_parallelism = _partitions()
    ctx.min_parallelism = _partitions()


def _actor_stage(ds: ray.data.Dataset, stage: type[Any], spec: Any) -> ray.data.Dataset:
    """A stage that loads a model or owns a child process: one long-lived copy per CPU."""
    result: ray.data.Dataset = ds.map_batches(
        stage, fn_constructor_args=(spec,), concurrency=_partitions(), batch_format="numpy"
    )
    return result


def _quality_filters(job: PipelineJob) -> list[Filter]:
    q = job.quality
    candidates: list[tuple[bool, type[Any], Any]] = [
        (q.gopher_repetition.enabled, GopherRepetition, q.gopher_repetition),
        (q.gopher.enabled, GopherQuality, q.gopher),
        (q.c4.enabled, C4Quality, q.c4),
        (q.fineweb.enabled, FineWebQuality, q.fineweb),
    ]
    return [cls(spec) for enabled, cls, spec in candidates if enabled]


def _read_and_filter(job: PipelineJob, paths: list[str]) -> ray.data.Dataset:
    files = [{"path": p, "file_index": i} for i, p in enumerate(paths)]
    logger.info("reading %d input files", len(files))
    # Many small input blocks so that files spread evenly over the workers.
    blocks = min(len(files), 16 * _partitions())
    ds = ray.data.from_items(files, override_num_blocks=blocks).flat_map(DocumentReader(job.input))
    if job.extract.enabled:
        ds = _actor_stage(ds, ExtractMainText, job.extract)
    if job.language.enabled:
        ds = _actor_stage(ds, IdentifyLanguage, job.language)
    else:
        ds = ds.map_batches(
            lambda b: {**b, "language": np.full(len(b["id"]), "", object)}, batch_format="numpy"
        )
    for quality in _quality_filters(job):
        ds = ds.map_batches(quality, batch_format="numpy")
    ds = ds.map_batches(add_text_hash, batch_format="numpy")
    if job.dedup.exact.enabled:
        ds = ds.groupby("text_hash", num_partitions=_partitions()).map_groups(
            mark_exact_duplicates, batch_format="numpy"
        )
    else:
        ds = ds.map_batches(
            lambda b: {**b, "duplicate_of": np.full(len(b["id"]), "", object)}, batch_format="numpy"
        )
    result: ray.data.Dataset = ds.sort("order").materialize()
    return result


def _near_duplicates(job: PipelineJob, ds: ray.data.Dataset) -> tuple[ray.data.Dataset, dict[str, Any]]:
    """Mark MinHash duplicates (status, duplicate_of) and each kept document's cluster size."""
    spec = job.dedup.minhash
    kept = ds.filter(lambda r: r["status"] == KEPT).select_columns(["id", "order", "text", "status"])
    verified = (
        kept.map_batches(MinhashSignatures(spec), batch_format="numpy")
        .map_batches(BandRows(spec.bands, spec.rows), batch_format="numpy")
        .groupby("bucket", num_partitions=_partitions())
        .map_groups(bucket_edges(spec.threshold), batch_format="numpy")
        .materialize()
    )
    candidates = int(verified.sum("compared") or 0) if verified.count() else 0
    edges = verified.filter(lambda r: r["b"] >= 0).drop_columns(["compared"]).materialize()
    wordless = kept.map_batches(count_without_shingles, batch_format="numpy").materialize()
    skipped = int(wordless.sum("no_shingles") or 0) if kept.count() else 0
    info: dict[str, Any] = {
        "candidate_pairs": candidates,
        "edges": edges.count(),
        "minhash_skipped_no_shingles": skipped,
        "cluster_size_histogram": {},
    }
    if info["edges"] == 0:
        return ds.map_batches(lambda b: {**b, "cluster_size": np.ones(len(b["id"]), np.int64)}), info
    stars = connected_components(edges, _partitions()).materialize()
    sizes = (
        stars.groupby("parent")
        .count()
        .map_batches(lambda b: {"order": b["parent"], "cluster_size": b["count()"] + 1}, batch_format="numpy")
        .materialize()
    )
    histogram = sizes.groupby("cluster_size").count().to_pandas()
    info["cluster_size_histogram"] = {
        int(s): int(c) for s, c in zip(histogram["cluster_size"], histogram["count()"], strict=True)
    }
    removed = stars.map_batches(
        lambda b: {"order": b["node"], "near_duplicate_of": b["parent_id"]}, batch_format="numpy"
    )
    joined = (
        ds.join(removed, "left_outer", num_partitions=_partitions(), on=("order",))
        .join(sizes, "left_outer", num_partitions=_partitions(), on=("order",))
        .map_batches(_mark_near_duplicates, batch_format="pandas")
        .sort("order")
    )
    return joined, info


def _mark_near_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    hit = df["near_duplicate_of"].notna() & (df["status"] == KEPT)
    df.loc[hit, "status"] = "dropped_minhash_duplicate"
    df.loc[hit, "duplicate_of"] = df.loc[hit, "near_duplicate_of"]
    df["cluster_size"] = df["cluster_size"].fillna(1).astype("int64")
    return df.drop(columns=["near_duplicate_of"])


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


def _deduplicated(
    job: PipelineJob, store: StageStore, paths: list[str], near_path: Path
) -> tuple[ray.data.Dataset, dict[str, Any]]:
    """Rows after exact and near dedup, each stage loaded when an earlier run finished it."""
    filtered = store.load("filtered")
    if filtered is None:
        filtered = store.save("filtered", _read_and_filter(job, paths))
    logger.info("read, extracted, identified, filtered and exact-deduplicated %d documents", filtered.count())
    ds = store.load("deduplicated")
    if ds is None:
        near: dict[str, Any] = {"candidate_pairs": 0, "edges": 0, "cluster_size_histogram": {}}
        if job.dedup.minhash.enabled:
            marked, near = _near_duplicates(job, filtered)
        else:
            marked = filtered.map_batches(lambda b: {**b, "cluster_size": np.ones(len(b["id"]), np.int64)})
        atomic_write(near_path, json.dumps(near).encode("utf-8"))
        ds = store.save("deduplicated", marked)
    return ds, dict(json.loads(near_path.read_text(encoding="utf-8")))


def run_pipeline(job: PipelineJob) -> dict[str, Any]:
    """Run every enabled stage; return the stats that are also written to stats/pipeline.json."""
    started = time.monotonic()
    out = Path(job.output.dir)
    (out / "stats").mkdir(parents=True, exist_ok=True)
    _configure_ray_data()

    paths = _input_paths(job, out)
    ds, near = _deduplicated(job, StageStore(out, job, paths), paths, out / "work" / "near_duplicates.json")
    kept = ds.filter(lambda r: r["status"] == KEPT).materialize()
    if kept.count() == 0:
        raise RuntimeError(f"{job.name}: no documents survived filtering; check the input and thresholds")

    tokenizer_path = out / "tokenizer.json"
    tokenizer = train_tokenizer(_texts(kept), job.tokenizer, tokenizer_path)
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    if eot_id is None:
        raise RuntimeError(f"{tokenizer_path}: the tokenizer lacks {END_OF_TEXT}")
    logger.info("trained a %d-token BPE on %d documents", tokenizer.get_vocab_size(), kept.count())
    ids, sizes, docs = _tokenize(kept, tokenizer_path)
    rehydration: dict[str, Any] = {}
    if job.dedup.minhash.rehydrate:
        ids, docs, rehydration = _rehydrate(job.dedup.minhash.rehydrate, ids, sizes, docs)
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
    stats = pipeline_stats(
        job=job,
        rows=rows,
        manifest=manifest,
        near={**near, "rehydration": rehydration},
        balance=balance,
        seconds=time.monotonic() - started,
    )
    atomic_write(out / "stats" / "pipeline.json", json.dumps(stats, indent=2).encode("utf-8"))
    plot_stats(stats, out / "stats" / "pipeline.png")
    logger.info("wrote %d tokens in %d shards to %s", manifest["total_tokens"], len(manifest["shards"]), out)
    return stats


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
