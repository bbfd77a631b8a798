"""The per-worker training loop that Ray Train runs on every rank: steps and their metrics
(checkpoints: strata.train.checkpoints)."""

from __future__ import annotations

import logging
import resource
import time
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist

from strata.spec.models import ModelConfig, mfu
from strata.spec.train import TrainJob
from strata.train.blend import BlendedSamples
from strata.train.checkpoints import checkpoint_info, load_last_checkpoint, report_checkpoint, save_final
from strata.train.data import Samples, validation_loss_sum
from strata.train.metrics import MetricsLogger
from strata.train.samples import validation_samples
from strata.train.stalls import StallWatch
from strata.train.step import (
    configure_runtime,
    data_parallel_rank,
    is_pipelined,
    open_samples,
    pipeline_step,
    pipeline_validation_loss_sum,
    train_step,
)

logger = logging.getLogger(__name__)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train `config["job"]` on this rank; rank 0 writes metrics, every rank its checkpoint shard."""
    job = TrainJob.model_validate(config["job"])
    configure_runtime(job)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    out = Path(job.output.dir)
    samples, cfg = open_samples(job)
    held_out = validation_samples(job, verify=False)
    if rank == 0:  # from the shape: under ZeRO-3 a rank's module holds only its slice
        logger.info("model: %d parameters, %d FLOPs per token", cfg.param_count(), cfg.flops_per_token())
    engine, start = load_last_checkpoint(job, cfg, world)
    metrics = (
        MetricsLogger(out / "metrics.jsonl", keep_steps=start, tensorboard_dir=out / "tensorboard")
        if rank == 0
        else None
    )
    watch = StallWatch(job.workers.collective_timeout_s, out)
    peak = config.get("peak_flops_per_worker")
    try:
        row = _train_steps(
            job, cfg, engine, samples, held_out, start=start, metrics=metrics, watch=watch, peak=peak
        )
    finally:
        watch.close()
    info = checkpoint_info(job, cfg, int(row["step"])) if rank == 0 else None
    save_final(engine, cfg, row, out, info)
    if metrics is not None:
        metrics.close()


def _train_steps(
    job: TrainJob,
    cfg: ModelConfig,
    engine: Any,
    samples: Samples,
    held_out: Samples | None,
    *,
    start: int,
    metrics: MetricsLogger | None,
    watch: StallWatch,
    peak: float | None,
) -> dict[str, Any]:
    """Steps `start` … `job.steps - 1` of this rank, with metrics and periodic checkpoints; the last row.
    `peak` is one worker's accelerator FLOP/s (for MFU), None on CPUs."""
    rank, world = dist.get_rank(), dist.get_world_size()
    replica, replicas = data_parallel_rank(engine)
    b = job.batch
    tokens_per_step = job.global_batch * cfg.seq_len
    every = job.checkpoint.every_steps
    every_eval = job.eval.every_steps
    row: dict[str, Any] = {"step": start}
    for step in range(start, job.steps):
        started = time.perf_counter()
        lr = engine.get_lr()[0]  # this step's; the scheduler moves on after the optimizer step
        with watch.step_running(step):
            if job.parallel.pipeline_stages > 1:
                mean_loss = pipeline_step(
                    engine, samples, step=step, replica=replica, replicas=replicas, batch=b
                )
            else:
                loss_sum = train_step(engine, samples, step=step, rank=replica, world_size=replicas, batch=b)
                dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
                mean_loss = loss_sum.item() / (world * b.grad_accum_steps)
            seconds = time.perf_counter() - started
            memory = _peak_memory_mib_per_rank(engine.device, world)
        row = {
            "step": step + 1,
            "loss": mean_loss,
            "lr": lr,
            "step_seconds": seconds,
            "tokens_per_second": tokens_per_step / seconds,
            "tokens_per_second_per_worker": tokens_per_step / seconds / world,
            "model_flops_per_second": cfg.flops_per_token() * tokens_per_step / seconds,
            "mfu": mfu(cfg.flops_per_token(), tokens_per_step / seconds, world * peak) if peak else None,
            "memory_mib_max": max(memory),
            "memory_mib_per_rank": memory,
        }
        if isinstance(samples, BlendedSamples):
            row["tokens_by_source"] = samples.drawn_tokens((step + 1) * job.global_batch)
        if held_out is not None and (step + 1 == job.steps or (every_eval and (step + 1) % every_eval == 0)):
            row["val_loss"] = _validation_loss(engine, held_out, job, replica, replicas)
            if metrics is not None:
                logger.info("step %d/%d: validation loss %.4f", step + 1, job.steps, row["val_loss"])
        if metrics is not None:
            metrics.log(row)
            if (step + 1) % max(1, job.steps // 10) == 0 or step == 0:
                logger.info(
                    "step %d/%d: loss %.4f, %.0f tokens/s",
                    step + 1,
                    job.steps,
                    mean_loss,
                    row["tokens_per_second"],
                )
        if every and (step + 1) % every == 0 and step + 1 < job.steps:
            report_checkpoint(engine, row, checkpoint_info(job, cfg, step + 1) if rank == 0 else None)
    return row


def _validation_loss(engine: Any, held_out: Samples, job: TrainJob, replica: int, replicas: int) -> float:
    """Mean loss over the first `eval.samples` held-out samples, the same for any worker count
    and layout: each data-parallel replica sums its share, the sums are added over all ranks
    (ranks of one replica, e.g. tensor-parallel ones, hold the same sum, so it is divided by
    their number; of a pipeline, only the last stage holds it)."""
    device = engine.device
    count = min(job.eval.samples, held_out.num_samples)
    if is_pipelined(engine):
        mine = pipeline_validation_loss_sum(
            engine, held_out, count=count, replica=replica, replicas=replicas,
            micro_batch_size=job.batch.micro_batch_size,
        )  # fmt: skip
        holders = 1
    else:
        with torch.no_grad():
            mine = validation_loss_sum(
                lambda x, y: engine(x.to(device), y.to(device)),
                held_out,
                count=count,
                replica=replica,
                replicas=replicas,
            )
        holders = dist.get_world_size() // replicas
    total = mine.to(device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return float(total.item()) / count / holders


def _peak_memory_mib_per_rank(device: torch.device, world: int) -> list[float]:
    """Peak memory of every rank, gathered: accelerator memory on GPU, resident set on CPU."""
    if device.type == "cuda":
        mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    mine = torch.tensor([mib], dtype=torch.float64, device=device)
    every = torch.zeros(world, dtype=torch.float64, device=device)
    dist.all_gather_into_tensor(every, mine)
    return [round(v, 1) for v in every.tolist()]
