"""The pipeline's report: documents and tokens kept after every stage (in all and per
language), drops by reason, dedup clusters, balancing and tokens written, as JSON and as
one figure. Tokens are counted with the job's tokenizer on each document's text as the
stage saw it (extracted text for HTML), for dropped documents too."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from strata.pipeline.documents import KEPT
from strata.spec.pipeline import PipelineJob

# Stages in pipeline order and the status prefix of the rows each drops (most specific first
# where one prefix starts another).
STAGES = [
    ("read", "quarantined_"),
    ("extract", "dropped_extract_"),
    ("language", "dropped_language_"),
    ("gopher_repetition", "dropped_gopher_repetition_"),
    ("gopher", "dropped_gopher_"),
    ("c4", "dropped_c4_"),
    ("fineweb", "dropped_fineweb_"),
    ("exact_dedup", "dropped_exact_duplicate"),
    ("minhash_dedup", "dropped_minhash_duplicate"),
]


def stage_of(status: str) -> str:
    """The stage that gave a row this status ("" for kept rows)."""
    if status == KEPT:
        return ""
    for stage, prefix in STAGES:
        if status.startswith(prefix):
            return stage
    raise ValueError(f"status {status!r} belongs to no stage")


def pipeline_stats(
    *,
    job: PipelineJob,
    rows: dict[str, list[Any]],
    manifest: dict[str, Any],
    near: dict[str, Any],
    balance: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The JSON report of one run."""
    statuses = [str(s) for s in rows["status"]]
    languages = [str(lang) or "unknown" for lang in rows["language"]]
    tokens = [int(t) for t in rows["token_count"]]
    total = len(statuses)
    dropped_at = [stage_of(s) for s in statuses]
    by_reason = Counter(s for s in statuses if s != KEPT)
    stages: dict[str, Any] = {}
    remaining = total
    for index, (stage, prefix) in enumerate(STAGES):
        dropped = dropped_at.count(stage)
        remaining -= dropped
        later = {name for name, _ in STAGES[index + 1 :]} | {""}
        survivors = [i for i, at in enumerate(dropped_at) if at in later]
        per_language = Counter(languages[i] for i in survivors)
        tokens_per_language: Counter[str] = Counter()
        for i in survivors:
            tokens_per_language[languages[i]] += tokens[i]
        stages[stage] = {
            "dropped": dropped,
            "kept": remaining,
            "kept_by_language": dict(sorted(per_language.items())),
            "tokens_kept": sum(tokens_per_language.values()),
            "tokens_kept_by_language": dict(sorted(tokens_per_language.items())),
            "dropped_by_reason": {
                r.removeprefix(prefix) or stage: n
                for r, n in sorted(by_reason.items())
                if stage_of(r) == stage
            },
        }
    stages["minhash_dedup"].update(near)
    return {
        "job": job.name,
        "documents": {"total": total, "kept": statuses.count(KEPT), **dict(sorted(by_reason.items()))},
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
    histogram = stats["stages"]["minhash_dedup"]["cluster_size_histogram"]
    clusters.bar([str(k) for k in histogram], list(histogram.values()), color="tab:red")
    clusters.set_title("near-duplicate clusters by size")
    clusters.set_xlabel("documents in cluster")
    fig.suptitle(f"pipeline {stats['job']}")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
