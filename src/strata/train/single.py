"""Train a job in this one process, as rank 0 of a world of one (used by scaling sweeps).

The same model, DeepSpeed config and step as the Ray Train loop; no checkpoint.
"""

from __future__ import annotations

import os
import time
from typing import Any

from strata.ports import free_port
from strata.spec.train import TrainJob
from strata.train.step import build_engine, configure_runtime, open_samples, train_step


def train_single_process(job: TrainJob) -> dict[str, Any]:
    """Run `job.steps` steps; return the matmul parameter count, training FLOPs per token (PaLM
    convention), losses per step and the wall time of the steps."""
    configure_runtime(job)
    import deepspeed

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1"
    )
    deepspeed.init_distributed(dist_backend="nccl" if job.workers.use_gpu else "gloo")
    samples, cfg = open_samples(job)
    engine = build_engine(job, cfg, world_size=1)
    started = time.perf_counter()
    losses = []
    for step in range(job.steps):
        loss = train_step(engine, samples, step=step, rank=0, world_size=1, batch=job.batch)
        losses.append(loss.item() / job.batch.grad_accum_steps)
    return {
        "params": cfg.matmul_params(),
        "flops_per_token": cfg.flops_per_token(),
        "losses": losses,
        "seconds": time.perf_counter() - started,
    }
