"""The training job's report: `report/training.md` and `report/training.png` in its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_training(rows: list[dict[str, Any]], path: Path) -> None:
    """Loss, learning rate, tokens/s per worker and peak memory of every rank, by step."""
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    panels = [
        ("loss", "training loss (nats/token)"),
        ("lr", "learning rate"),
        ("tokens_per_second_per_worker", "tokens/s per worker"),
    ]
    for ax, (key, label) in zip(axes.flat, panels, strict=False):
        ax.plot(steps, [r[key] for r in rows], label=key)
        ax.set_ylabel(label)
    validated = [r for r in rows if r.get("val_loss") is not None]
    if validated:
        loss = axes.flat[0]
        loss.plot(
            [r["step"] for r in validated], [r["val_loss"] for r in validated], "o-", label="validation"
        )
        loss.set_ylabel("loss (nats/token)")
        loss.legend(fontsize="small")
    memory = axes.flat[3]
    for rank in range(max(len(r["memory_mib_per_rank"]) for r in rows)):  # resumed runs may differ
        held = [r for r in rows if rank < len(r["memory_mib_per_rank"])]
        memory.plot(
            [r["step"] for r in held], [r["memory_mib_per_rank"][rank] for r in held], label=f"rank {rank}"
        )
    memory.set_ylabel("peak memory (MiB)")
    memory.legend(fontsize="small")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_training_report(out: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """Write the report of a finished run into `out/report/`; return the Markdown file."""
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    plot_training(rows, report / "training.png")
    steady = rows[1:] or rows
    mfu = [r["mfu"] for r in steady if r.get("mfu") is not None]
    validated = [r for r in rows if r.get("val_loss") is not None]
    lines = [
        f"# Training report: {summary['job']}",
        "",
        "| | |",
        "|---|---|",
        f"| parameters | {summary['parameters']:,} |",
        f"| FLOPs per token (PaLM convention) | {summary['flops_per_token']:,} |",
        f"| steps | {len(rows)} |",
        f"| loss, first and last step | {rows[0]['loss']:.4f} → {rows[-1]['loss']:.4f} |",
        *(
            [
                f"| validation loss, first and last | {validated[0]['val_loss']:.4f} → {validated[-1]['val_loss']:.4f} |"
            ]
            if validated
            else []
        ),
        f"| tokens/s, all workers (mean after step 1) | {summary['mean_tokens_per_second']:,.0f} |",
        f"| step time (mean after step 1) | {sum(r['step_seconds'] for r in steady) / len(steady):.3f} s |",
        f"| peak memory, largest rank | {max(r['memory_mib_max'] for r in rows):,.0f} MiB |",
        f"| MFU (mean after step 1) | {f'{sum(mfu) / len(mfu):.1%}' if mfu else 'n/a (no accelerator peak)'} |",
        "",
        "![training](training.png)",
        "",
    ]
    path = report / "training.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
