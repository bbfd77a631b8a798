"""One training step of one rank, and what it needs, shared by the Ray Train loop, sweeps and the GPU benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from strata.spec.train import BatchSpec, TrainJob
from strata.train.data import ShardSamples, global_index
from strata.train.deepspeed_config import build_ds_config
from strata.train.models import ModelConfig, build_model, build_model_config
from strata.train.schedule import lr_scheduler


def configure_runtime(job: TrainJob) -> None:
    """Environment DeepSpeed reads at import: CPU accelerator unless GPUs are used, and a
    cache of compiled ops per Python environment (`make` fills it ahead of time)."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
    # The environment's own ninja: a cache built by another ninja version is rebuilt.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    if not job.workers.use_gpu:
        os.environ["DS_ACCELERATOR"] = "cpu"
        os.environ.setdefault("OMP_NUM_THREADS", str(job.workers.cpus_per_worker))
        torch.set_num_threads(job.workers.cpus_per_worker)


def open_samples(job: TrainJob) -> tuple[ShardSamples, ModelConfig]:
    """The job's samples and model shape, in a worker. The launcher already verified the
    shards' checksums before training started, so workers do not read every shard again."""
    samples = ShardSamples(Path(job.data.shards), job.model.seq_len, job.seed, verify=False)
    return samples, build_model_config(job.model, samples.vocab_size)


def build_engine(job: TrainJob, cfg: ModelConfig, world_size: int, *, load_universal: bool = False) -> Any:
    """The model, seeded, wrapped in a DeepSpeed engine (and compiled when the job asks);
    `load_universal` when it will load a universal checkpoint."""
    import deepspeed  # the caller has set DS_ACCELERATOR before this first import

    torch.manual_seed(job.seed)
    model = build_model(cfg, recompute=job.activation_checkpointing)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=model.parameters(),
        config=build_ds_config(job, world_size, load_universal=load_universal),
        lr_scheduler=lr_scheduler(job.optimizer, job.steps),
    )
    if world_size == 1 and job.zero.stage == 0:
        # One data-parallel rank has nothing to reduce, but DeepSpeed would still flatten
        # every gradient into a bucket, all-reduce it and copy it back after each backward.
        engine.enable_backward_allreduce = False
    if job.compile:
        engine.compile()
    return engine


def train_step(
    engine: Any, samples: ShardSamples, *, step: int, rank: int, world_size: int, batch: BatchSpec
) -> torch.Tensor:
    """One optimizer step of this rank (all its micro-steps); returns the sum of its micro-batch losses."""
    loss_sum = torch.zeros((), device=engine.device)
    for micro in range(batch.grad_accum_steps):
        first = global_index(
            step=step,
            micro=micro,
            rank=rank,
            accum_steps=batch.grad_accum_steps,
            world_size=world_size,
            micro_batch=batch.micro_batch_size,
        )
        x, y = samples.batch(first, batch.micro_batch_size)
        loss = engine(x.to(engine.device, non_blocking=True), y.to(engine.device, non_blocking=True))
        engine.backward(loss)
        engine.step()
        loss_sum += loss.detach()
    return loss_sum
