"""The pipeline's report: documents and tokens kept after every stage (in all and per
language), drops by reason, dedup clusters, balancing and tokens written, as JSON and as
one figure. Tokens are counted with the job's tokenizer on each document's text as the
stage saw it (extracted text for HTML), for dropped documents too; a kept document's from
the ids written to the shards (`kept_row_counts`), the same count without a second
encoding. A drop is counted under the stage its row's `dropped_by` names
(strata.pipeline.registry), whatever its status says. The counts are summed on the workers
(`row_counts`, strata.pipeline.aggregate); the driver sees one row per (stage, status,
language)."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import ray

from strata.pipeline.aggregate import totals
from strata.pipeline.documents import KEPT, Batch
from strata.pipeline.registry import STAGES
from strata.spec.pipeline import PipelineJob
from strata.storage import Location

NO_TOKENS = {"total_tokens": 0, "total_documents": 0, "tokens_by_language": {}, "tokens_by_source": {},
             "shards": [], "vocab_size": 0}  # fmt: skip


COUNT_KEYS = ["dropped_by", "status", "language"]
COUNT_VALUES = ["documents", "tokens"]


def _count_columns(batch: Batch) -> Batch:
    """map_batches: each row's (dropped_by, status, language) key, one document and its tokens,
    for `totals` to add up per block on the workers."""
    language = np.array([str(lang) or "unknown" for lang in batch["language"]], dtype=object)
    return {
        "dropped_by": batch["dropped_by"].astype(str).astype(object),
        "status": batch["status"].astype(str).astype(object),
        "language": language,
        "documents": np.ones(len(language), dtype=np.int64),
        "tokens": batch["token_count"].astype(np.int64),
    }


def row_counts(
    ds: ray.data.Dataset, columns: Callable[[Batch], Batch] = _count_columns
) -> list[dict[str, Any]]:
    """Documents and tokens per (dropped_by, status, language) over rows with a `token_count`
    (or whatever `columns` makes of each batch), in no particular order (`sorted_counts`)."""
    return totals(ds.map_batches(columns, batch_format="numpy"), COUNT_KEYS, COUNT_VALUES)


def _kept_count_columns(batch: Batch) -> Batch:
    """map_batches over tokenized kept rows: `_count_columns`' columns, the tokens counted
    from the shards' ids (less the end-of-text id each document ends with)."""
    n = len(batch["language"])
    return _count_columns(
        {
            "dropped_by": np.full(n, "", dtype=object),
            "status": np.full(n, KEPT, dtype=object),
            "language": batch["language"],
            "token_count": np.array([len(tokens) - 1 for tokens in batch["tokens"]], dtype=np.int64),
        }
    )


def kept_row_counts(tokenized: ray.data.Dataset) -> list[dict[str, Any]]:
    """`row_counts`' rows for the kept documents, from the tokens written to the shards, so
    that the kept text is not tokenized a second time for the stats."""
    return row_counts(tokenized, _kept_count_columns)


def sorted_counts(counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count rows sorted by (dropped_by, status, language)."""
    return sorted(counts, key=lambda c: tuple(str(c[k]) for k in COUNT_KEYS))


def pipeline_stats(
    *,
    job: PipelineJob,
    counts: list[dict[str, Any]],
    manifest: dict[str, Any],
    reports: dict[str, dict[str, Any]],
    balance: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The JSON report of one run.

    `counts` (see `row_counts`) holds, per `dropped_by` (the registry stage that dropped the
    rows, "" when kept), `status` and `language`, the number of `documents` and their
    `tokens`; `reports` maps a stage to the figures it reported; `manifest` is the shard
    manifest (NO_TOKENS when nothing was written).
    """
    position = {stage.name: index for index, stage in enumerate(STAGES)} | {"": len(STAGES)}
    by_reason: Counter[str] = Counter()
    for c in counts:
        by_reason[str(c["status"])] += int(c["documents"])
    stages: dict[str, Any] = {}
    for index, stage in enumerate(STAGES):
        per_language: Counter[str] = Counter()
        tokens_per_language: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for c in counts:
            at = position[str(c["dropped_by"])]
            if at > index:
                per_language[str(c["language"]) or "unknown"] += int(c["documents"])
                tokens_per_language[str(c["language"]) or "unknown"] += int(c["tokens"])
            elif at == index:
                reasons[str(c["status"])] += int(c["documents"])
        stages[stage.name] = {
            "dropped": sum(reasons.values()),
            "kept": sum(per_language.values()),
            "kept_by_language": dict(sorted(per_language.items())),
            "tokens_kept": sum(tokens_per_language.values()),
            "tokens_kept_by_language": dict(sorted(tokens_per_language.items())),
            "dropped_by_reason": {stage.reason(r): n for r, n in sorted(reasons.items())},
            **reports.get(stage.name, {}),
        }
    kept = by_reason.pop(KEPT, 0)
    return {
        "job": job.name,
        "documents": {
            "total": kept + sum(by_reason.values()),
            "kept": kept,
            **dict(sorted(by_reason.items())),
        },
        "stages": stages,
        "balance": balance,
        "tokens": {
            "total": manifest["total_tokens"],
            "documents_written": manifest["total_documents"],
            "by_language": manifest["tokens_by_language"],
            "by_source": manifest["tokens_by_source"],
            "shards": len(manifest["shards"]),
            "vocab_size": manifest["vocab_size"],
        },
        "seconds": round(seconds, 2),
    }


def plot_stats(stats: dict[str, Any], path: Location) -> None:
    """Documents and tokens kept per stage, tokens written per language, dedup cluster sizes."""
    fig, (docs, stage_tokens, tokens, clusters) = plt.subplots(1, 4, figsize=(20, 4.5))
    names = ["input", *stats["stages"]]
    kept = [stats["documents"]["total"], *(s["kept"] for s in stats["stages"].values())]
    docs.bar(names, kept, color="tab:blue")
    docs.set_title("documents kept after each stage")
    docs.tick_params(axis="x", labelrotation=60)
    stage_names = list(stats["stages"])
    stage_tokens.bar(stage_names, [s["tokens_kept"] for s in stats["stages"].values()], color="tab:purple")
    stage_tokens.set_title("tokens kept after each stage")
    stage_tokens.tick_params(axis="x", labelrotation=60)
    by_language = stats["tokens"]["by_language"]
    tokens.bar(list(by_language), list(by_language.values()), color="tab:green")
    tokens.set_title("tokens written per language")
    histogram = stats["stages"]["minhash_dedup"].get("cluster_size_histogram", {})  # none if none read
    clusters.bar([str(k) for k in histogram], list(histogram.values()), color="tab:red")
    clusters.set_title("near-duplicate clusters by size")
    clusters.set_xlabel("documents in cluster")
    fig.suptitle(f"pipeline {stats['job']}")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    plt.close(fig)
    path.write_bytes(png.getvalue())
