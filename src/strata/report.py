"""The demo report: a Markdown summary of the pipeline and training runs, with a loss plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from strata.train.metrics import read_metrics


def plot_loss(rows: list[dict[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(pipeline_dir: Path, train_dir: Path, out: Path, wall_seconds: dict[str, float]) -> Path:
    """Write report.md and loss.png into `out`; return the report's path."""
    stats = json.loads((pipeline_dir / "stats" / "pipeline.json").read_text(encoding="utf-8"))
    rows = read_metrics(train_dir / "metrics.jsonl")
    out.mkdir(parents=True, exist_ok=True)
    plot_loss(rows, out / "loss.png")
    docs, stages = stats["documents"], stats["stages"]
    steady = rows[1:] or rows
    tokens_per_s = sum(r["tokens_per_second"] for r in steady) / len(steady)
    drops = "\n".join(
        f"| {reason} | {count} |" for reason, count in docs.items() if reason not in ("total", "kept")
    )
    stage_rows = "\n".join(f"| {name} | {s['dropped']} | {s['kept']} |" for name, s in stages.items())
    text = (
        f"""# Strata demo report

## Pipeline

{docs["total"]} documents read, {docs["kept"]} kept (`stats/pipeline.json` has every count and
`stats/pipeline.png` the plots).

| stage | dropped | kept after it |
|---|---|---|
{stage_rows}

Tokens written: {stats["tokens"]["total"]} in {stats["tokens"]["shards"]} shards
(byte-level BPE, vocabulary {stats["tokens"]["vocab_size"]}).

| drop reason | documents |
|---|---|
{drops}

## Training

| | |
|---|---|
| steps | {len(rows)} |
| loss, first step | {rows[0]["loss"]:.3f} |
| loss, last step | {rows[-1]["loss"]:.3f} |
| tokens/s (all workers, mean after step 1) | {tokens_per_s:,.0f} |

![loss](loss.png)

## Wall time

| phase | seconds |
|---|---|
"""
        + "\n".join(f"| {phase} | {seconds:.1f} |" for phase, seconds in wall_seconds.items())
        + "\n"
    )
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
