"""Peak memory and step time of one training step with and without activation checkpointing.

Usage:
    .venv/bin/python benchmarks/activation_memory.py [--preset llama-10m] [--seq-len 1024] [--micro-batch 4]

Each mode runs in its own process (fp32 on the CPU): it builds the preset's Llama, then
times --repeat forward+backward steps. The memory figure is the process's peak resident
set during the steps minus its resident set after building the model: activations kept
for the backward pass, gradients and transients. Baseline: recompute off, in the same
run. Prints one JSON line per mode and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from strata.spec.models import build_model_config
from strata.spec.train import ModelSpec
from strata.train.models import build_model


def _resident_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(args: argparse.Namespace, recompute: bool) -> dict[str, object]:
    """One mode, in this process."""
    cfg = build_model_config(ModelSpec(preset=args.preset, seq_len=args.seq_len), vocab_size=32_000)
    torch.manual_seed(0)
    model = build_model(cfg, recompute=recompute)
    idx = torch.randint(0, cfg.vocab_size, (args.micro_batch, args.seq_len))
    before = _resident_mib()
    best = float("inf")
    for _ in range(args.repeat):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        model(idx, idx.roll(-1, dims=1)).backward()
        best = min(best, time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": "recompute" if recompute else "baseline (keep activations)",
        "preset": args.preset,
        "seq_len": args.seq_len,
        "micro_batch": args.micro_batch,
        "step_memory_mib": round(peak - before, 1),
        "step_seconds": round(best, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="llama-10m")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recompute", choices=["off", "on"], help=argparse.SUPPRESS)  # one mode (child)
    args = parser.parse_args()
    if args.recompute:
        print(json.dumps(measure(args, args.recompute == "on")))
        return
    rows = []
    for mode in ("off", "on"):
        child = subprocess.run(
            [sys.executable, *sys.argv, "--recompute", mode], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(child.stdout.splitlines()[-1]))
        print(json.dumps(rows[-1]))
    baseline, recompute = rows
    print(
        json.dumps(
            {
                "memory_ratio": round(recompute["step_memory_mib"] / baseline["step_memory_mib"], 3),
                "step_time_ratio": round(recompute["step_seconds"] / baseline["step_seconds"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
