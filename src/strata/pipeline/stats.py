"""The pipeline's report: documents and tokens kept after every stage (in all and per
language), drops by reason, dedup clusters, balancing and tokens written, as JSON and as
one figure. Tokens are counted with the job's tokenizer on each document's text as the
stage saw it (extracted text for HTML), for dropped documents too. A drop is counted under the
stage its row's `dropped_by` names (strata.pipeline.registry), whatever its status says."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from strata.pipeline.documents import KEPT
from strata.pipeline.registry import STAGES
from strata.spec.pipeline import PipelineJob

NO_TOKENS = {"total_tokens": 0, "total_documents": 0, "tokens_by_language": {}, "tokens_by_source": {},
             "shards": [], "vocab_size": 0}  # fmt: skip


def pipeline_stats(
    *,
    job: PipelineJob,
    rows: dict[str, list[Any]],
    manifest: dict[str, Any],
    reports: dict[str, dict[str, Any]],
    balance: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The JSON report of one run.

    `rows` holds every document's `status`, `dropped_by` (the registry stage that dropped it,
    "" when kept), `language` and `token_count`; `reports` maps a stage to the figures it
    reported; `manifest` is the shard manifest (NO_TOKENS when nothing was written).
    """
    statuses = [str(s) for s in rows["status"]]
    languages = [str(lang) or "unknown" for lang in rows["language"]]
    tokens = [int(t) for t in rows["token_count"]]
    position = {stage.name: index for index, stage in enumerate(STAGES)} | {"": len(STAGES)}
    dropped_at = [position[str(by)] for by in rows["dropped_by"]]
    by_reason = Counter(s for s in statuses if s != KEPT)
    stages: dict[str, Any] = {}
    for index, stage in enumerate(STAGES):
        survivors = [i for i, at in enumerate(dropped_at) if at > index]
        per_language = Counter(languages[i] for i in survivors)
        tokens_per_language: Counter[str] = Counter()
        for i in survivors:
            tokens_per_language[languages[i]] += tokens[i]
        reasons = Counter(statuses[i] for i, at in enumerate(dropped_at) if at == index)
        stages[stage.name] = {
            "dropped": sum(reasons.values()),
            "kept": len(survivors),
            "kept_by_language": dict(sorted(per_language.items())),
            "tokens_kept": sum(tokens_per_language.values()),
            "tokens_kept_by_language": dict(sorted(tokens_per_language.items())),
            "dropped_by_reason": {stage.reason(r): n for r, n in sorted(reasons.items())},
            **reports.get(stage.name, {}),
        }
    return {
        "job": job.name,
        "documents": {
            "total": len(statuses),
            "kept": statuses.count(KEPT),
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


def plot_stats(stats: dict[str, Any], path: Path) -> None:
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
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
