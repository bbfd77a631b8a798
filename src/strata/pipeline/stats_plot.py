"""The pipeline stats as one figure (`stats/pipeline.png`): documents and tokens kept after each
stage, tokens written per language, near-duplicate clusters by size. Apart from the counting
in strata.pipeline.stats so that Ray workers, which import that module, never import
matplotlib (a third of a second per worker process)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from strata.storage import Location


def plot_stats(stats: dict[str, Any], path: Location) -> None:
    """Documents and tokens kept per stage, tokens written per language, dedup cluster sizes."""
    fig, (docs, stage_tokens, tokens, clusters) = plt.subplots(1, 4, figsize=(20, 4.5))
    names = ["input", *stats["stages"]]
    kept = [stats["documents"]["total"], *(s["kept"] for s in stats["stages"].values())]
    docs.bar(names, kept, color="tab:blue")
    docs.set_title("documents kept after each stage")
    plt.setp(docs.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    stage_names = list(stats["stages"])
    stage_tokens.bar(stage_names, [s["tokens_kept"] for s in stats["stages"].values()], color="tab:purple")
    stage_tokens.set_title("tokens kept after each stage")
    plt.setp(stage_tokens.get_xticklabels(), rotation=60, ha="right", rotation_mode="anchor")
    by_language = stats["tokens"]["by_language"]
    tokens.bar(list(by_language), list(by_language.values()), color="tab:green")
    tokens.set_title("tokens written per language")
    histogram = stats["stages"]["minhash_dedup"].get("cluster_size_histogram", {})  # none if none read
    clusters.bar([str(k) for k in histogram], list(histogram.values()), color="tab:red")
    clusters.set_title("near-duplicate clusters by size")
    clusters.set_xlabel("documents in cluster")
    fig.suptitle(f"pipeline {stats['job']}")
    # Fixed margins for the rotated stage names: tight_layout measured every label (0.4 s a run).
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.34, top=0.86, wspace=0.22)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    plt.close(fig)
    path.write_bytes(png.getvalue())
