"""Strata's training step on one GPU for the ~1.3B GPT of shared/bench/gpu_anchor.py.

Same shape as the anchor (d=2048, 24 layers, 16 heads, vocabulary 50304, sequence
2048, micro-batch 8, bf16), built by Strata's code: `strata.train.gpt.GPT`, the
DeepSpeed config from `build_ds_config`, samples read from token shards by
`ShardSamples`, and the step of `strata.train.step.train_step`. Shards of random
tokens are written to a temporary directory first. Prints one JSON line per ZeRO
stage, with the anchor's fields, so the two compare as a ratio. MFU is measured against the
dense bf16 peak the catalog gives for `--instance` (default p5en.48xlarge, H200).

    python benchmarks/gpu_train_step.py --stages 1,2      # on a GPU
    python benchmarks/gpu_train_step.py --smoke            # tiny model on the CPU (gloo)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_flops(instance: str) -> float:
    """Dense bf16 FLOP/s of one accelerator of a catalog instance type."""
    from strata.spec.catalog import load_catalog

    peak = load_catalog().get(instance).peak_bf16_flops_per_accelerator
    if peak is None:
        raise SystemExit(f"--instance {instance}: the catalog has no accelerator peak for it")
    return peak


def write_random_shards(out: Path, vocab: int, tokens: int) -> None:
    from strata.pipeline.shards import TokenizedDocument, write_shards

    rng = np.random.default_rng(0)
    docs = [rng.integers(1, vocab, size=4096, dtype=np.uint16) for _ in range(-(-tokens // 4096))]
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=out,
        tokens_per_shard=1 << 22,
        seed=0,
        vocab_size=vocab,
        eot_id=0,
    )


def run_stage(
    stage: int,
    micro_batch: int,
    steps: int,
    warmup: int,
    *,
    smoke: bool,
    compile_model: bool,
    precision: str,
    instance: str,
) -> dict[str, object]:
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    if smoke:
        os.environ["DS_ACCELERATOR"] = "cpu"
    import deepspeed
    import torch

    from strata.spec.models import GPTConfig, mfu
    from strata.spec.train import TrainJob
    from strata.train.data import ShardSamples
    from strata.train.step import build_engine, train_step

    shape = {"n_layers": 2, "d_model": 64, "n_heads": 4, "seq_len": 64} if smoke else {
        "n_layers": 24, "d_model": 2048, "n_heads": 16, "seq_len": 2048}  # fmt: skip
    vocab = 256 if smoke else 50304
    job = TrainJob.model_validate({
        "kind": "train", "name": "gpu-bench", "data": {"shards": "unused"}, "output": {"dir": "unused"},
        "steps": warmup + steps, "model": shape, "zero": {"stage": stage},
        "batch": {"micro_batch_size": micro_batch}, "workers": {"num_workers": 1, "use_gpu": not smoke},
        "optimizer": {"warmup_steps": 0, "lr": 3e-4}, "compile": compile_model,
        "precision": precision,
    })  # fmt: skip
    torch.backends.cuda.matmul.allow_tf32 = True
    for key, value in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29512"), ("RANK", "0"),
                       ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):  # fmt: skip
        os.environ.setdefault(key, value)
    deepspeed.init_distributed(dist_backend="gloo" if smoke else "nccl")
    cuda = not smoke
    with tempfile.TemporaryDirectory() as tmp:
        shard_dir = Path(tmp) / "shards"
        write_random_shards(
            shard_dir, vocab, tokens=(warmup + steps) * micro_batch * (shape["seq_len"] + 1) * 2
        )
        samples = ShardSamples(shard_dir, shape["seq_len"], seed=0)
        cfg = GPTConfig(vocab_size=vocab, **shape)
        engine = build_engine(job, cfg, world_size=1)
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        t_warm = time.perf_counter()
        for step in range(warmup):
            loss = train_step(engine, samples, step=step, rank=0, world_size=1, batch=job.batch)
        sync()
        warm_s = time.perf_counter() - t_warm
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for step in range(warmup, warmup + steps):
            loss = train_step(engine, samples, step=step, rank=0, world_size=1, batch=job.batch)
        sync()
        dt = (time.perf_counter() - t0) / steps
    tokens_per_s = micro_batch * cfg.seq_len / dt
    return {
        "mode": mode_name(stage, compile_model, precision),
        "gpu": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "deepspeed": deepspeed.__version__,
        "params_matmul": cfg.matmul_params(),
        "micro_batch": micro_batch,
        "seq": cfg.seq_len,
        "step_ms": round(dt * 1e3, 1),
        "tokens_per_s": round(tokens_per_s),
        "tflops": round(cfg.flops_per_token() * tokens_per_s / 1e12, 1),
        "mfu": round(mfu(cfg.flops_per_token(), tokens_per_s, peak_flops(instance)), 4),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
        "warmup_s": round(warm_s, 1),
        "loss": round(float(loss), 4),
    }


def mode_name(stage: int | str, compile_model: bool, precision: str) -> str:
    parts = [f"strata_z{stage}", precision, *(["compile"] if compile_model else [])]
    return "_".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, help="run one ZeRO stage in this process")
    parser.add_argument("--stages", default="2,1", help="stages to run, each in its own process")
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--timeout", type=int, default=240)
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU")
    parser.add_argument(
        "--instance", default="p5en.48xlarge", help="catalog instance type whose peak MFU uses"
    )
    parser.add_argument("--compile", action="store_true", help="set the job's `compile: true`")
    parser.add_argument(
        "--precision", default="bf16", choices=["bf16", "autocast"], help="the job's `precision`"
    )
    args = parser.parse_args()
    common = [
        "--micro-batch",
        str(args.micro_batch),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        *(["--smoke"] if args.smoke else []),
        *(["--compile"] if args.compile else []),
        *("--precision", args.precision),
        *("--instance", args.instance),
    ]
    if args.stage is not None:
        result = run_stage(
            args.stage,
            args.micro_batch,
            args.steps,
            args.warmup,
            smoke=args.smoke,
            compile_model=args.compile,
            precision=args.precision,
            instance=args.instance,
        )
        print("RESULT " + json.dumps(result), flush=True)
        return
    for stage in args.stages.split(","):
        started = time.time()
        command = [sys.executable, __file__, "--stage", stage, *common]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            error = {
                "mode": mode_name(stage, args.compile, args.precision),
                "error": (proc.stderr or proc.stdout)[-1500:],
            }
            print(lines[-1][7:] if lines else json.dumps(error), flush=True)
        except subprocess.TimeoutExpired:
            print(
                json.dumps(
                    {
                        "mode": mode_name(stage, args.compile, args.precision),
                        "error": "timeout",
                    }
                ),
                flush=True,
            )
        print(
            json.dumps(
                {
                    "mode": mode_name(stage, args.compile, args.precision),
                    "wall_s": round(time.time() - started, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
