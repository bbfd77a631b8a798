"""One training step of one rank, and what it needs, shared by the Ray Train loop, sweeps and the GPU benchmark."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from strata.spec.models import LlamaConfig, ModelConfig, build_model_config
from strata.spec.train import BatchSpec, TrainJob
from strata.train.data import Samples, global_index
from strata.train.deepspeed_config import build_ds_config
from strata.train.models import build_model
from strata.train.pipeline_stages import llama_pipeline
from strata.train.samples import training_samples
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


def open_samples(job: TrainJob) -> tuple[Samples, ModelConfig]:
    """The job's samples and model shape, in a worker. The launcher already verified the
    shards' checksums before training started, so workers do not read every shard again."""
    samples = training_samples(job, verify=False)
    return samples, build_model_config(job.model, samples.vocab_size)


def build_engine(job: TrainJob, cfg: ModelConfig, world_size: int, *, load_universal: bool = False) -> Any:
    """The model, seeded, wrapped in a DeepSpeed engine (and compiled when the job asks): a
    pipeline engine when the job has pipeline stages; with `parallel.tensor` T > 1 DeepSpeed
    AutoTP splits the Llama weights over groups of T consecutive ranks. `world_size` counts
    every rank; `load_universal` when it will load a universal checkpoint."""
    import deepspeed  # the caller has set DS_ACCELERATOR before this first import

    torch.manual_seed(job.seed)
    stages = job.parallel.pipeline_stages
    if stages > 1 or job.parallel.tensor > 1:
        # The stages, or the tensor-parallel groups, are laid out over the ranks before
        # deepspeed.initialize would attach DeepSpeed to the process group Ray Train made.
        deepspeed.init_distributed(dist_backend="nccl" if job.workers.use_gpu else "gloo")
    if stages > 1:
        assert isinstance(cfg, LlamaConfig)  # the job's validation refuses other families
        model = llama_pipeline(cfg, stages=stages, seed=job.seed, recompute=job.activation_checkpointing)
    else:
        model = build_model(cfg, recompute=job.activation_checkpointing)
    mpu = None
    if job.parallel.tensor > 1:
        from deepspeed.utils import groups

        # DeepSpeed's data × tensor mesh (tensor groups of consecutive ranks), made before
        # initialize so that DeepSpeed counts the batch over the data-parallel ranks only.
        groups._init_tp_mesh_device(tensor_model_parallel_size=job.parallel.tensor)
        mpu = groups
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        mpu=mpu,
        model_parameters=model.parameters(),
        config=build_ds_config(
            job, world_size // (stages * job.parallel.tensor), load_universal=load_universal
        ),
        lr_scheduler=lr_scheduler(job.optimizer, job.steps),
    )
    if world_size == 1 and job.zero.stage == 0:
        # One data-parallel rank has nothing to reduce, but DeepSpeed would still flatten
        # every gradient into a bucket, all-reduce it and copy it back after each backward.
        engine.enable_backward_allreduce = False
    if stages == 1 and job.parallel.tensor == 1:
        _clip_with_foreach_kernels(engine, job.optimizer.grad_clip)
    if job.compile:
        engine.compile()
    return engine


def _clip_with_foreach_kernels(engine: Any, max_norm: float) -> None:
    """Clip with torch's `clip_grad_norm_` where DeepSpeed clips fp32 gradients itself (ZeRO-0
    without bf16 master weights, e.g. `precision: autocast`). The gradients are already
    averaged over the data-parallel ranks then, so each rank's norm is the global one;
    DeepSpeed's `clip_grad_norm_` computes the same norm with two kernels per parameter and
    an all-reduce per step, torch's with a few foreach kernels (267.2 → 265.8 ms per step of a 1.3B
    model on one H200, docs/benchmarks.md). Without a model-parallel group only: AutoTP's
    split weights need the norm summed over the tensor-parallel ranks, which DeepSpeed does."""
    parameters = [p for p in engine.module.parameters() if p.requires_grad]
    engine.clip_fp32_gradients = lambda: torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)


def is_pipelined(engine: Any) -> bool:
    """A DeepSpeed pipeline engine (it lays the ranks out on a pipe × data grid)."""
    return getattr(engine, "grid", None) is not None


def data_parallel_rank(engine: Any) -> tuple[int, int]:
    """This rank's data-parallel replica and their number: the ranks of one tensor-parallel
    group (T consecutive ranks, DeepSpeed's data × tensor mesh) are one replica and read the
    same samples; every rank is one without pipeline stages or tensor parallelism."""
    if is_pipelined(engine):
        return engine.grid.get_data_parallel_rank(), engine.grid.get_data_parallel_world_size()
    tensor = engine.autotp_size() or 1
    return torch.distributed.get_rank() // tensor, torch.distributed.get_world_size() // tensor


def pipeline_step(
    engine: Any, samples: Samples, *, step: int, replica: int, replicas: int, batch: BatchSpec
) -> float:
    """One optimizer step of a pipeline engine (its micro-batches flow through the stages);
    the mean loss over the global batch, the same on every rank. Only the first stage reads
    inputs and the last targets; the others never draw from the iterator."""
    micro_batches = (
        micro_batch(samples, step=step, micro=micro, replica=replica, replicas=replicas, batch=batch)
        for micro in range(batch.grad_accum_steps)
    )
    return float(engine.train_batch(data_iter=micro_batches).item())


def pipeline_validation_loss_sum(
    engine: Any, held_out: Samples, *, count: int, replica: int, replicas: int, micro_batch_size: int
) -> torch.Tensor:
    """This replica's sum of per-sample mean losses over its share of the first `count`
    held-out samples, through a pipeline engine: on the last stage, zero on the others, so
    the sum over all ranks divided by `count` is the same for any layout. Each call runs one
    micro-batch of `micro_batch_size` samples (the shape the stages exchange); call c of
    replica r takes samples (c · replicas + r) · micro_batch_size + j, samples past `count`
    filling the micro-batch and left out of the sum. Every rank makes the same calls."""
    total = torch.zeros((), dtype=torch.float64)
    per_call = micro_batch_size * replicas
    for call in range(-(-count // per_call)):
        first = call * per_call + replica * micro_batch_size
        wanted = range(first, first + micro_batch_size)
        x, y = held_out.in_order([i if i < count else 0 for i in wanted])
        # The micro-batch's mean loss comes back too, padding included; the logits give each sample's.
        _, logits = engine.eval_batch(iter([(x, y)]), return_logits=True, num_micro_batches=1)
        if engine.is_last_stage():  # the micro-batch's logits, (samples, seq_len, vocab)
            logits = logits.float()
            per_token = F.cross_entropy(logits.transpose(1, 2), y.to(logits.device), reduction="none")
            valid = torch.tensor([i < count for i in wanted])
            total += per_token.mean(dim=1).double().cpu()[valid].sum()
    return total


def train_step(
    engine: Any, samples: Samples, *, step: int, rank: int, world_size: int, batch: BatchSpec
) -> torch.Tensor:
    """One optimizer step of this rank (all its micro-steps); returns the sum of its micro-batch losses."""
    loss_sum = torch.zeros((), device=engine.device)
    for micro in range(batch.grad_accum_steps):
        x, y = micro_batch(samples, step=step, micro=micro, replica=rank, replicas=world_size, batch=batch)
        loss = engine(x.to(engine.device, non_blocking=True), y.to(engine.device, non_blocking=True))
        engine.backward(loss)
        engine.step()
        loss_sum += loss.detach()
    return loss_sum


def micro_batch(
    samples: Samples, *, step: int, micro: int, replica: int, replicas: int, batch: BatchSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of one micro-batch of one data-parallel replica."""
    first = global_index(
        step=step,
        micro=micro,
        rank=replica,
        accum_steps=batch.grad_accum_steps,
        world_size=replicas,
        micro_batch=batch.micro_batch_size,
    )
    return samples.batch(first, batch.micro_batch_size)
