"""Tokens/s and MFU of Strata's JAX trainer (`strata.train.jax`) on this host's devices.

Trains a Llama preset on shards of random tokens written to a temporary directory, through
the trainer a `backend: jax` job runs (`strata.train.jax.trainer.train`), on a mesh over
all local devices (FSDP across them), and prints one JSON line: the median step time and
tokens/s of the timed steps (the first `--warmup` steps, compilation included, are left
out), MFU against the dense bf16 peak the catalog gives for `--instance`, and the peak
device memory where the backend reports it. bf16 compute on TPUs and GPUs, fp32 on CPUs.

    python benchmarks/jax_train_step.py --instance v5p-8              # on one TPU v5p host
    python benchmarks/jax_train_step.py --instance p5en.48xlarge      # on one H200
    python benchmarks/jax_train_step.py --smoke                       # llama-10m on the CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

VOCAB = 32_000  # Llama 2's vocabulary


def job_dict(args: argparse.Namespace, devices: int, shards: Path, out: Path) -> dict[str, Any]:
    """A `backend: jax` train job: the preset at `--seq`, FSDP over every device, no checkpoints."""
    return {
        "kind": "train",
        "name": "jax-bench",
        "backend": "jax",
        "seed": 0,
        "steps": args.warmup + args.steps + 1,  # the run stops one step early: no final checkpoint
        "data": {"shards": str(shards)},
        "model": {"preset": args.model, "seq_len": args.seq},
        "batch": {"micro_batch_size": args.micro_batch * devices, "grad_accum_steps": 1},
        "workers": {"num_workers": 1},
        "parallel": {"fsdp": devices} if devices > 1 else {},
        "activation_checkpointing": args.recompute,
        "checkpoint": {"every_steps": 0},
        "output": {"dir": str(out)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="llama-1b", help="Llama preset (spec/models.py)")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--micro-batch", type=int, default=8, help="samples per device per step")
    parser.add_argument("--steps", type=int, default=15, help="timed steps")
    parser.add_argument("--warmup", type=int, default=4, help="untimed first steps (compilation)")
    parser.add_argument("--recompute", action="store_true", help="activation checkpointing")
    parser.add_argument("--instance", help="catalog instance type for the accelerator peak (MFU)")
    parser.add_argument("--smoke", action="store_true", help="llama-10m, sequence 128, 3 + 2 steps")
    args = parser.parse_args()
    if args.smoke:
        args.model, args.seq, args.micro_batch, args.steps, args.warmup = "llama-10m", 128, 2, 3, 2

    import jax
    from gpu_train_step import write_random_shards  # the sibling script (this folder is on sys.path)

    from strata.spec.load import load_train_job
    from strata.train.jax.__main__ import peak_flops
    from strata.train.jax.trainer import train
    from strata.train.metrics import read_metrics

    devices = jax.devices()
    peak = peak_flops(args.instance) if args.instance else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = args.micro_batch * len(devices) * (args.warmup + args.steps + 1)
        write_random_shards(root / "shards", VOCAB, samples * (args.seq + 1))
        (root / "job.yaml").write_text(
            json.dumps(job_dict(args, len(devices), root / "shards", root / "out"))
        )
        job = load_train_job(root / "job.yaml")
        started = time.perf_counter()
        train(job, stop_after=args.warmup + args.steps, peak_flops_per_device=peak)
        wall = time.perf_counter() - started
        rows = read_metrics(root / "out" / "metrics.jsonl")[args.warmup :]
    step = statistics.median(r["step_seconds"] for r in rows)
    tokens_per_s = job.global_batch * args.seq / step
    memory = devices[0].memory_stats() or {}
    result = {
        "mode": "strata_jax",
        "backend": jax.default_backend(),
        "device": devices[0].device_kind,
        "devices": len(devices),
        "jax": jax.__version__,
        "model": args.model,
        "micro_batch": args.micro_batch,
        "seq": args.seq,
        "step_ms": round(step * 1e3, 1),
        "tokens_per_s": round(tokens_per_s),
        "mfu": round(statistics.median(r["mfu"] for r in rows), 4) if peak else None,
        "peak_mem_gib": round(memory["peak_bytes_in_use"] / 2**30, 1)
        if "peak_bytes_in_use" in memory
        else None,
        "loss": round(rows[-1]["loss"], 4),
        "wall_s": round(wall, 1),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
