"""The per-worker training loop that Ray Train runs on every rank."""

from __future__ import annotations

import json
import logging
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import ray.train
import torch
import torch.distributed as dist

from strata.spec.train import TrainJob
from strata.train.checkpoints import CHECKPOINT_INFO, checkpoint_info, needs_universal, read_checkpoint_info
from strata.train.data import ShardSamples
from strata.train.llama import LlamaConfig
from strata.train.metrics import MetricsLogger
from strata.train.models import MODEL_CONFIG, ModelConfig
from strata.train.pipeline_stages import stage_names_to_llama
from strata.train.stalls import StallWatch
from strata.train.step import (
    build_engine,
    configure_runtime,
    data_parallel_rank,
    is_pipelined,
    open_samples,
    pipeline_step,
    train_step,
)
from strata.train.universal import UNIVERSAL, universal_client_state

logger = logging.getLogger(__name__)
CHECKPOINT_TAG = "state"  # one tag: each reported checkpoint directory holds one state


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train `config["job"]` on this rank; rank 0 writes metrics, every rank its checkpoint shard."""
    job = TrainJob.model_validate(config["job"])
    configure_runtime(job)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    out = Path(job.output.dir)
    samples, cfg = open_samples(job)
    if rank == 0:  # from the shape: under ZeRO-3 a rank's module holds only its slice
        logger.info("model: %d parameters, %d FLOPs per token", cfg.param_count(), cfg.flops_per_token())
    engine, start = _engine_at_last_checkpoint(job, cfg, world)
    metrics = (
        MetricsLogger(out / "metrics.jsonl", keep_steps=start, tensorboard_dir=out / "tensorboard")
        if rank == 0
        else None
    )
    watch = StallWatch(job.workers.collective_timeout_s)
    peak = config.get("peak_flops_per_worker")
    try:
        row = _train_steps(job, cfg, engine, samples, start=start, metrics=metrics, watch=watch, peak=peak)
    finally:
        watch.close()
    info = checkpoint_info(job, cfg, int(row["step"])) if rank == 0 else None
    _save_and_report(engine, cfg, row, out, info)
    if metrics is not None:
        metrics.close()


def _train_steps(
    job: TrainJob,
    cfg: ModelConfig,
    engine: Any,
    samples: ShardSamples,
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
            "mfu": cfg.flops_per_token() * tokens_per_step / seconds / (world * peak) if peak else None,
            "memory_mib_max": max(memory),
            "memory_mib_per_rank": memory,
        }
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
            _report_checkpoint(engine, row, checkpoint_info(job, cfg, step + 1) if rank == 0 else None)
    return row


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


def _engine_at_last_checkpoint(job: TrainJob, cfg: ModelConfig, world: int) -> tuple[Any, int]:
    """The DeepSpeed engine, loaded from the last checkpoint Ray Train registered (after a
    failure or on resubmission), and the step to continue from. ZeRO state of another rank
    count loads from the universal copy the launcher made. The sample order depends only on
    the global sample number, so the run continues with exactly the samples it would have seen."""
    # Called after configure_runtime: DeepSpeed reads the environment it sets at import.
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return build_engine(job, cfg, world), 0
    with checkpoint.as_directory() as path:
        directory = Path(path)
        universal = needs_universal(read_checkpoint_info(directory), world)
        engine = build_engine(job, cfg, world, load_universal=universal)
        source = directory / UNIVERSAL if universal else directory
        _, client_state = engine.load_checkpoint(str(source), tag=CHECKPOINT_TAG)
    step = int((client_state or {}).get("step", 0))
    logger.info("resumed from the checkpoint of step %d%s", step, " (universal)" if universal else "")
    return engine, step


def _save_state(engine: Any, directory: str, step: int, info: dict[str, Any] | None) -> None:
    """This rank's DeepSpeed shard of the training state; rank 0 (given `info`) adds what the
    checkpoint was made from, which the launcher checks before a later run resumes from it."""
    engine.save_checkpoint(
        directory, tag=CHECKPOINT_TAG, client_state={"step": step, **universal_client_state()}
    )
    if info is not None:
        (Path(directory) / CHECKPOINT_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")


def _report_checkpoint(engine: Any, row: dict[str, Any], info: dict[str, Any] | None) -> None:
    """Every rank saves its shard of the training state and reports it with the step's metrics."""
    with tempfile.TemporaryDirectory() as tmp:
        _save_state(engine, tmp, row["step"], info)
        ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def _gather_pipeline_stages(engine: Any, cfg: LlamaConfig) -> dict[str, torch.Tensor] | None:
    """The whole model's weights under `Llama`'s names on rank 0 (None elsewhere): every rank
    sends its stage's (data-parallel replicas send the same ones again)."""
    mine = {
        k: v.detach().cpu() for k, v in stage_names_to_llama(engine.module.state_dict(), cfg.n_layers).items()
    }
    every: list[dict[str, torch.Tensor]] | None = (
        [{}] * dist.get_world_size() if dist.get_rank() == 0 else None
    )
    dist.gather_object(mine, every, dst=0)
    return {k: v for stage in every for k, v in stage.items()} if every is not None else None


def _save_and_report(
    engine: Any, cfg: ModelConfig, row: dict[str, Any], out: Path, info: dict[str, Any] | None
) -> None:
    """Every rank saves its DeepSpeed shard and reports it; rank 0 (the one given `info`) also
    writes plain weights and the model's config (what `strata export` needs)."""
    # Under ZeRO-3 each rank holds a slice of every parameter: gathering them is a
    # collective, so every rank takes part and rank 0 receives the whole model.
    if engine.zero_optimization_stage() == 3:
        full = engine._zero3_consolidated_16bit_state_dict()
    elif isinstance(cfg, LlamaConfig) and is_pipelined(engine):
        full = _gather_pipeline_stages(engine, cfg)
    else:
        full = engine.module.state_dict() if info is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        _save_state(engine, tmp, row["step"], info)
        if info is not None:
            # Written aside and renamed: a run that dies here leaves the previous weights whole.
            torch.save({k: v.detach().cpu() for k, v in full.items()}, out / "model.pt.partial")
            (out / "model.pt.partial").replace(out / "model.pt")
            (out / MODEL_CONFIG).write_text(json.dumps(info["model"], indent=2), encoding="utf-8")
        ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))
