"""Train a job in this one process, as rank 0 of a world of one (used by scaling sweeps).

The same model, DeepSpeed config and step as the Ray Train loop; no checkpoint.
"""

from __future__ import annotations

import os
import time
from typing import Any

from strata.ports import free_port
from strata.spec.train import TrainJob
from strata.train.data import validation_loss_sum
from strata.train.samples import validation_samples
from strata.train.step import build_engine, configure_runtime, open_samples, train_step


def train_single_process(job: TrainJob) -> dict[str, Any]:
    """Run `job.steps` steps; return the matmul parameter count, training FLOPs per token (PaLM
    convention), losses per step, the wall time of the steps and, with `data.validation`, the
    mean loss over the first `eval.samples` held-out samples after the last step (else None)."""
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
    seconds = time.perf_counter() - started
    return {
        "params": cfg.matmul_params(),
        "flops_per_token": cfg.flops_per_token(),
        "losses": losses,
        "seconds": seconds,
        "validation_loss": _validation_loss(job, engine),
    }


def _validation_loss(job: TrainJob, engine: Any) -> float | None:
    held_out = validation_samples(job, verify=False)
    if held_out is None:
        return None
    import torch

    count = min(job.eval.samples, held_out.num_samples)
    with torch.no_grad():
        total = validation_loss_sum(
            lambda x, y: engine(x.to(engine.device), y.to(engine.device)),
            held_out,
            count=count,
            replica=0,
            replicas=1,
        )
    return float(total.item()) / count
