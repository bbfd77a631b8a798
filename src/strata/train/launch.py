"""Build the Ray Train TorchTrainer from a TrainJob and run it."""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from strata.errors import JobError
from strata.spec.catalog import load_catalog
from strata.spec.memory import check_fits
from strata.spec.models import ModelConfig, build_model_config
from strata.spec.train import TrainJob, WorkersSpec
from strata.train.checkpoints import convert_to_universal, plan_resume
from strata.train.loop import train_loop_per_worker
from strata.train.metrics import read_metrics
from strata.train.report import write_training_report
from strata.train.run_files import WEIGHTS
from strata.train.samples import training_samples, validation_samples
from strata.train.stalls import STALLS, read_stall_records

logger = logging.getLogger(__name__)


def prepare_training(job: TrainJob, *, instance_type: str | None) -> Callable[[], dict[str, Any]]:
    """Check that the job can start on the connected Ray cluster, writing nothing: the shards
    (intact, at least one sample of `model.seq_len`), the checkpoint a resumed run would load,
    room for the workers. Return the function that trains and returns a summary of
    metrics.jsonl. `instance_type` (a catalog row) gives the accelerator peak MFU is
    measured against. Raises JobError saying what is refused and why."""
    out = Path(job.output.dir).resolve()
    samples = training_samples(job)
    logger.info(
        "%d training samples of %d tokens in %s",
        samples.num_samples,
        job.model.seq_len,
        ", ".join(s.shards for s in job.data.blend()),
    )
    held_out = validation_samples(job)
    if held_out is not None:
        logger.info(
            "validation loss on %d of %d held-out samples", min(job.eval.samples, held_out.num_samples),
            held_out.num_samples,
        )  # fmt: skip
    cfg = build_model_config(job.model, samples.vocab_size)
    check_tensor_split(job, cfg)
    check_memory(job, cfg, instance_type)
    universal = plan_resume(job, cfg, out / "ray" / job.name)
    check_cluster_holds(job.workers)
    resolved = job.with_values({"output.dir": str(out)})  # strata.jobs made the input paths absolute
    peak = peak_flops_per_worker(job, instance_type)
    return functools.partial(_train, resolved, cfg, universal, peak)


def _train(job: TrainJob, cfg: ModelConfig, universal: Path | None, peak: float | None) -> dict[str, Any]:
    out = Path(job.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / STALLS, ignore_errors=True)  # an earlier run's
    if universal is not None:
        convert_to_universal(universal)
    w = job.workers
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": job.model_dump(mode="json"), "peak_flops_per_worker": peak},
        # A rank that stops answering fails the collective after this long, not hours later.
        torch_config=TorchConfig(timeout_s=w.collective_timeout_s),
        scaling_config=ScalingConfig(
            num_workers=w.num_workers, use_gpu=w.use_gpu, resources_per_worker={"CPU": w.cpus_per_worker}
        ),
        run_config=RunConfig(
            name=job.name,
            storage_path=str(out / "ray"),
            checkpoint_config=CheckpointConfig(num_to_keep=job.checkpoint.keep),
            failure_config=FailureConfig(max_failures=job.checkpoint.max_failures),
        ),
    )
    try:
        result = trainer.fit()
        error: BaseException | None = result.error
    except Exception as exc:  # Ray Train 2 raises TrainingFailedError
        error = exc
    if error is not None:
        stalls = read_stall_records(out)
        why = f"{'; '.join(stalls)} (Ray: {error})" if stalls else str(error)
        raise JobError(f"training job {job.name!r} failed: {why}") from error
    rows = read_metrics(out / "metrics.jsonl")
    summary = {
        "job": job.name,
        "steps": len(rows),
        "first_loss": rows[0]["loss"],
        "final_loss": rows[-1]["loss"],
        "mean_tokens_per_second": sum(r["tokens_per_second"] for r in rows[1:]) / max(1, len(rows) - 1),
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
        "weights": str(out / WEIGHTS),
        "parameters": cfg.param_count(),
        "flops_per_token": cfg.flops_per_token(),
    }
    summary["report"] = str(write_training_report(out, rows, summary))
    logger.info("trained %d steps: loss %.3f → %.3f", len(rows), summary["first_loss"], summary["final_loss"])
    return summary


def check_tensor_split(job: TrainJob, cfg: ModelConfig) -> None:
    """Refuse a tensor-parallel job whose output head does not split evenly: the vocabulary
    comes from the shards, so the job's validation cannot see it (a tied head stays whole)."""
    tensor = job.parallel.tensor
    if tensor > 1 and not job.model.tie_embeddings and cfg.vocab_size % tensor:
        raise JobError(
            f"parallel.tensor {tensor}: the output head splits by vocabulary and the shards' vocabulary "
            f"({cfg.vocab_size}, {job.data.blend()[0].shards}) is not a multiple of it; use a tensor size that "
            "divides it, or tokenize with a vocabulary padded to a multiple"
        )


def check_memory(job: TrainJob, cfg: ModelConfig, instance_type: str | None) -> None:
    """Refuse a GPU job whose weights, gradients, optimizer states and activations cannot fit
    one accelerator of the instance type it runs on (`strata.spec.memory`, the estimate
    `strata validate --show` prints), before any worker starts: SpecError naming the settings
    to change. Nothing to check on CPU workers or an instance type outside the catalog."""
    catalog = load_catalog()
    if not job.workers.use_gpu or instance_type is None or instance_type not in catalog:
        return
    instance = catalog.get(instance_type)
    if instance.accelerator_memory_gib:
        check_fits(cfg, job, instance, f"train job {job.name!r} on {instance_type}")


def check_cluster_holds(workers: WorkersSpec) -> None:
    """Refuse a worker group the connected Ray cluster cannot place (Ray would wait for it forever)."""
    import ray

    need = {"CPU": workers.num_workers * workers.cpus_per_worker}
    if workers.use_gpu:
        need["GPU"] = workers.num_workers
    have = ray.cluster_resources()  # type: ignore[no-untyped-call]
    short = [k for k, v in need.items() if have.get(k, 0) < v]
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    largest_node = max((n["Resources"].get("CPU", 0) for n in nodes if n["Alive"]), default=0)
    if short or largest_node < workers.cpus_per_worker:
        wanted = ", ".join(f"{v:g} {k}" for k, v in need.items())
        cluster = ", ".join(f"{have.get(k, 0):g} {k}" for k in need)
        raise JobError(
            f"workers: {workers.num_workers} workers need {wanted} (cpus_per_worker "
            f"{workers.cpus_per_worker}{', one GPU each' if workers.use_gpu else ''}); the Ray cluster has "
            f"{cluster}, the largest node {largest_node:g} CPU. Lower workers.num_workers or "
            "cpus_per_worker, or declare more or larger nodes"
        )


def peak_flops_per_worker(job: TrainJob, instance: str | None) -> float | None:
    """Dense bf16 FLOP/s of one worker's accelerator, from the catalog entry of the instance
    type the job runs on (`strata submit` passes the stack's); None on CPU workers."""
    if not job.workers.use_gpu:
        return None
    catalog = load_catalog()
    if instance is None or instance not in catalog:
        logger.warning("instance type %r is not in the catalog: MFU is not reported", instance)
        return None
    return catalog.get(instance).peak_bf16_flops_per_accelerator
