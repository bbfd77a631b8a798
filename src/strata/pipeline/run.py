"""Build and run the pipeline on Ray Data from a PipelineJob.

Outputs under `output.dir`: `shards/` (see strata.pipeline.shards), `tokenizer.json`,
`stats/pipeline.json`, `quarantine.jsonl` (bad input records with source and line)
and `duplicates.jsonl` (every removed duplicate with the id of the kept document).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import ray

from strata.pipeline.dedup.exact import add_text_hash, mark_exact_duplicates
from strata.pipeline.dedup.minhash import MinhashSignatures, find_near_duplicates
from strata.pipeline.documents import KEPT, Batch
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.read import JsonlReader
from strata.pipeline.shards import write_shards
from strata.pipeline.tokenize import END_OF_TEXT, Tokenize, train_tokenizer
from strata.spec.pipeline import PipelineJob

logger = logging.getLogger(__name__)


class MarkNearDuplicates:
    """map_batches stage: drop the rows clustering chose to remove."""

    def __init__(self, duplicate_of: dict[str, str]) -> None:
        self.duplicate_of = duplicate_of

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        dup = batch["duplicate_of"].astype(object)
        for i, doc_id in enumerate(batch["id"]):
            kept_id = self.duplicate_of.get(str(doc_id))
            if kept_id is not None and status[i] == KEPT:
                status[i], dup[i] = "dropped_minhash_duplicate", kept_id
        batch["status"], batch["duplicate_of"] = status, dup
        return batch


def _collect(ds: ray.data.Dataset, columns: list[str]) -> dict[str, list[Any]]:
    """Gather some columns of the whole dataset to the driver, in dataset order."""
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for batch in ds.select_columns(columns).iter_batches(batch_format="numpy", batch_size=4096):
        for c in columns:
            out[c].extend(batch[c])
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def run_pipeline(job: PipelineJob) -> dict[str, Any]:
    """Run every enabled stage; return the stats that are also written to stats/pipeline.json."""
    started = time.monotonic()
    out = Path(job.output.dir)
    (out / "stats").mkdir(parents=True, exist_ok=True)
    ray.data.DataContext.get_current().execution_options.preserve_order = True

    files = [{"path": str(Path(p).resolve()), "file_index": i} for i, p in enumerate(job.input.paths)]
    ds = ray.data.from_items(files).flat_map(JsonlReader(job.input))
    if job.quality.gopher.enabled:
        ds = ds.map_batches(GopherQuality(job.quality.gopher), batch_format="numpy")
    ds = ds.map_batches(add_text_hash, batch_format="numpy")
    if job.dedup.exact.enabled:
        partitions = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        ds = ds.groupby("text_hash", num_partitions=partitions).map_groups(
            mark_exact_duplicates, batch_format="numpy"
        )
    else:
        ds = ds.add_column("duplicate_of", lambda df: [""] * len(df))
    ds = ds.sort("order").materialize()
    logger.info("read, filtered and exact-deduplicated %d documents", ds.count())

    near_clusters: dict[int, int] = {}
    candidate_pairs = 0
    if job.dedup.minhash.enabled:
        signed = ds.map_batches(MinhashSignatures(job.dedup.minhash), batch_format="numpy")
        rows = _collect(signed.filter(lambda r: r["status"] == KEPT), ["id", "order", "signature"])
        near = find_near_duplicates(
            [str(i) for i in rows["id"]],
            [int(o) for o in rows["order"]],
            np.array(rows["signature"], dtype=np.uint32).reshape(len(rows["id"]), -1),
            job.dedup.minhash,
        )
        near_clusters, candidate_pairs = near.cluster_size_histogram, near.candidate_pairs
        ds = ds.map_batches(MarkNearDuplicates(near.duplicate_of), batch_format="numpy").materialize()
        logger.info("MinHash: %d candidate pairs, %d removed", candidate_pairs, len(near.duplicate_of))

    everything = _collect(ds, ["id", "status", "duplicate_of", "detail", "text"])
    kept_texts = [t for t, s in zip(everything["text"], everything["status"], strict=True) if s == KEPT]
    if not kept_texts:
        raise RuntimeError(f"{job.name}: no documents survived filtering; check the input and thresholds")
    tokenizer_path = out / "tokenizer.json"
    tokenizer = train_tokenizer(kept_texts, job.tokenizer, tokenizer_path)
    logger.info("trained a %d-token BPE on %d documents", tokenizer.get_vocab_size(), len(kept_texts))

    kept_ds = ds.filter(lambda r: r["status"] == KEPT)
    tokenized = kept_ds.map_batches(Tokenize(str(tokenizer_path)), batch_format="numpy")
    docs = [np.asarray(t, dtype=np.uint16) for t in _collect(tokenized, ["tokens"])["tokens"]]
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    if eot_id is None:
        raise RuntimeError(f"{tokenizer_path}: the tokenizer lacks {END_OF_TEXT}")
    manifest = write_shards(
        docs=docs,
        out_dir=out / "shards",
        tokens_per_shard=job.shards.tokens_per_shard,
        seed=job.seed,
        vocab_size=tokenizer.get_vocab_size(),
        eot_id=eot_id,
    )
    stats = _stats(
        job=job,
        rows=everything,
        manifest=manifest,
        near_clusters=near_clusters,
        candidate_pairs=candidate_pairs,
        seconds=time.monotonic() - started,
    )
    _write_side_files(out, everything)
    (out / "stats" / "pipeline.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    logger.info("wrote %d tokens in %d shards to %s", manifest["total_tokens"], len(manifest["shards"]), out)
    return stats


def _write_side_files(out: Path, rows: dict[str, list[Any]]) -> None:
    statuses = rows["status"]
    _write_jsonl(
        out / "quarantine.jsonl",
        [
            {"source": d, "reason": s.removeprefix("quarantined_")}
            for d, s in zip(rows["detail"], statuses, strict=True)
            if s.startswith("quarantined_")
        ],
    )
    _write_jsonl(
        out / "duplicates.jsonl",
        [
            {"id": i, "duplicate_of": k, "kind": s.removeprefix("dropped_").removesuffix("_duplicate")}
            for i, k, s in zip(rows["id"], rows["duplicate_of"], statuses, strict=True)
            if s.endswith("_duplicate")
        ],
    )


def _stats(
    *,
    job: PipelineJob,
    rows: dict[str, list[Any]],
    manifest: dict[str, Any],
    near_clusters: dict[int, int],
    candidate_pairs: int,
    seconds: float,
) -> dict[str, Any]:
    counts = Counter(str(s) for s in rows["status"])
    kept = counts.pop(KEPT, 0)
    total = kept + sum(counts.values())
    return {
        "job": job.name,
        "documents": {"total": total, "kept": kept, **dict(sorted(counts.items()))},
        "stages": {
            "read": {"total": total, "quarantined": sum(v for k, v in counts.items() if "quarantined" in k)},
            "quality": {"dropped": sum(v for k, v in counts.items() if k.startswith("dropped_gopher"))},
            "exact_dedup": {"dropped": counts.get("dropped_exact_duplicate", 0)},
            "minhash_dedup": {
                "dropped": counts.get("dropped_minhash_duplicate", 0),
                "candidate_pairs": candidate_pairs,
                "cluster_size_histogram": near_clusters,
            },
        },
        "tokens": {
            "total": manifest["total_tokens"],
            "shards": len(manifest["shards"]),
            "vocab_size": manifest["vocab_size"],
        },
        "seconds": round(seconds, 2),
    }
