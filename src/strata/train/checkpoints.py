"""Training checkpoints: save, load, the report to Ray Train, the resume checks, universal
conversion, and the final weights.

Every rank saves its DeepSpeed shard of the training state under one tag and reports it to
Ray Train with the step's metrics; rank 0 adds `strata-checkpoint.json`, what the checkpoint
was made from. Before a job starts, the launcher reads the newest one under the job's Ray
storage and refuses to resume when the checkpoint cannot continue this job: another model
shape, seed or global batch (the sample sequence would differ), another ZeRO stage, or another
pipeline or tensor-parallel layout (those resume on the same number of workers only). ZeRO
1-3 state saved by another number of ranks is first converted to DeepSpeed's universal
checkpoint (strata.train._universal), which any number of ranks loads. The last step also
writes `model.pt` (the whole state dict) and `model-config.json`, which `strata export` reads.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from strata.errors import JobError
from strata.files import atomic_path, atomic_write_text
from strata.spec.models import LlamaConfig, ModelConfig, describe
from strata.spec.train import TrainJob
from strata.train._universal import UNIVERSAL, universal_client_state, write_universal
from strata.train.pipeline_stages import stage_names_to_llama
from strata.train.run_files import MODEL_CONFIG, WEIGHTS
from strata.train.step import build_engine, is_pipelined

logger = logging.getLogger(__name__)
CHECKPOINT_TAG = "state"  # one tag: each reported checkpoint directory holds one state
CHECKPOINT_INFO = "strata-checkpoint.json"
RAY_SNAPSHOT = "checkpoint_manager_snapshot.json"  # Ray Train's record of the checkpoints it registered
_FRESH = "move the run's ray/ folder away or use another output.dir"


def checkpoint_info(job: TrainJob, cfg: ModelConfig, step: int) -> dict[str, Any]:
    """The facts a later run compares against (written by rank 0 into each checkpoint)."""
    return {
        "job": job.name,
        "step": step,
        "model": describe(cfg),
        "seed": job.seed,
        "global_batch_size": job.global_batch,
        "sample_order": job.data.sample_order(),
        "zero_stage": job.zero.stage,
        "pipeline_stages": job.parallel.pipeline_stages,
        "tensor": job.parallel.tensor,
        "world_size": job.workers.num_workers,
    }


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint folder a resumed run starts from under a Ray Train run directory: the
    latest that Ray Train's snapshot names (a run that died may have left newer folders the
    snapshot had not recorded yet), else the newest folder (their names are times)."""
    snapshot = root / RAY_SNAPSHOT
    if not snapshot.is_file():
        folders = sorted(path for path in root.glob("checkpoint_*") if path.is_dir())
        return folders[-1] if folders else None
    try:
        latest = json.loads(snapshot.read_text(encoding="utf-8"))["latest_checkpoint_result"]
        return root / latest["checkpoint_dir_name"] if latest else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JobError(f"{snapshot}: unreadable ({exc}); {_FRESH}") from exc


def read_checkpoint_info(directory: Path) -> dict[str, Any]:
    """The record rank 0 wrote into a checkpoint directory."""
    info: dict[str, Any] = json.loads((directory / CHECKPOINT_INFO).read_text(encoding="utf-8"))
    return info


def needs_universal(saved: dict[str, Any], world_size: int) -> bool:
    """True when ZeRO-partitioned state of another rank count must be loaded (stage 0 keeps
    whole state on every rank and loads on any count as it is)."""
    return bool(saved["zero_stage"] > 0 and saved["world_size"] != world_size)


def check_resumable(job: TrainJob, cfg: ModelConfig, root: Path) -> tuple[Path, dict[str, Any]] | None:
    """Raise JobError if the checkpoint a resumed run would start from (under `root`) cannot
    continue `job`; return its directory and info."""
    directory = latest_checkpoint(root)
    if directory is None:
        return None
    try:
        saved = read_checkpoint_info(directory)
    except FileNotFoundError:
        raise JobError(
            f"{directory}: a checkpoint without {CHECKPOINT_INFO} (from an older Strata or another "
            f"program) cannot be checked against this job; {_FRESH}"
        ) from None
    except (OSError, ValueError) as exc:
        raise JobError(f"{directory / CHECKPOINT_INFO}: unreadable ({exc}); {_FRESH}") from exc
    wanted = checkpoint_info(job, cfg, saved["step"])
    where = f"{directory} (step {saved['step']})"
    fix = "use another output.dir or job name for a new run, or restore the job as it was"
    model_diff = {
        k: (saved["model"].get(k), v) for k, v in wanted["model"].items() if saved["model"].get(k) != v
    }
    if model_diff:
        listed = ", ".join(
            f"{k}: {old} in the checkpoint, {new} in the job" for k, (old, new) in model_diff.items()
        )
        raise JobError(f"checkpoint {where} holds another model ({listed}); {fix}")
    saved.setdefault("pipeline_stages", 1)  # written before Strata had pipelines
    saved.setdefault("tensor", 1)  # written before Strata had tensor parallelism
    saved.setdefault("sample_order", wanted["sample_order"])  # written before Strata recorded it
    for key in ("seed", "global_batch_size", "sample_order", "zero_stage", "pipeline_stages", "tensor"):
        if saved[key] != wanted[key]:
            raise JobError(
                f"checkpoint {where} was trained with {key} {saved[key]}, the job asks for {wanted[key]}: "
                f"the run could not continue the same way; {fix}"
            )
    split = [f"{key} {saved[key]}" for key in ("pipeline_stages", "tensor") if saved[key] > 1]
    if split and saved["world_size"] != wanted["world_size"]:
        kind = "pipelined" if saved["pipeline_stages"] > 1 else "tensor-parallel"
        raise JobError(
            f"checkpoint {where} holds the {' and '.join(split)} layout of {saved['world_size']} workers and "
            f"the job asks for {wanted['world_size']}: a {kind} run resumes on the same number of workers; {fix}"
        )
    logger.info(
        "resuming %s on %d workers (it was written by %d)", where, wanted["world_size"], saved["world_size"]
    )
    return directory, saved


def plan_resume(job: TrainJob, cfg: ModelConfig, root: Path) -> Path | None:
    """Before the workers start, writing nothing: check the checkpoint a resumed run would
    start from (under the Ray Train run directory `root`); return it when its ZeRO state was
    partitioned over another number of ranks and must first become a universal checkpoint
    (`convert_to_universal`), else None."""
    resume = check_resumable(job, cfg, root)
    if resume is not None and needs_universal(resume[1], job.workers.num_workers):
        return resume[0]
    return None


def convert_to_universal(checkpoint: Path) -> None:
    """Write the universal copy of `checkpoint` inside it (written aside, renamed), once."""
    write_universal(checkpoint, CHECKPOINT_TAG)


def load_last_checkpoint(job: TrainJob, cfg: ModelConfig, world: int) -> tuple[Any, int]:
    """The DeepSpeed engine, loaded from the last checkpoint Ray Train registered (after a
    failure or on resubmission), and the step to continue from. ZeRO state of another rank
    count loads from the universal copy the launcher made. The sample order depends only on
    the global sample number, so the run continues with exactly the samples it would have seen.
    Call after `configure_runtime`: DeepSpeed reads the environment it sets at import."""
    import ray.train  # here: `strata export` and the resume checks need no Ray

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
        atomic_write_text(Path(directory) / CHECKPOINT_INFO, json.dumps(info, indent=2))


def report_checkpoint(engine: Any, row: dict[str, Any], info: dict[str, Any] | None) -> None:
    """Every rank saves its shard of the training state and reports it with the step's metrics
    (`info`: rank 0's `checkpoint_info`, None on other ranks)."""
    import ray.train

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


def gather_weights(engine: Any, cfg: ModelConfig) -> dict[str, torch.Tensor] | None:
    """The whole model's state dict under `Llama`'s or `GPT`'s names on rank 0 (None elsewhere),
    on the CPU. Under ZeRO-3 or tensor parallelism each rank holds a slice of the parameters:
    gathering them is a collective, so every rank must call this."""
    if engine.zero_optimization_stage() == 3 or (engine.autotp_size() or 1) > 1:
        full = engine._consolidated_16bit_state_dict()
    elif isinstance(cfg, LlamaConfig) and is_pipelined(engine):
        full = _gather_pipeline_stages(engine, cfg)
    else:
        full = engine.module.state_dict() if dist.get_rank() == 0 else None
    return {k: v.detach().cpu() for k, v in full.items()} if full is not None else None


def save_final(
    engine: Any, cfg: ModelConfig, row: dict[str, Any], out: Path, info: dict[str, Any] | None
) -> None:
    """After the last step: every rank saves its DeepSpeed shard and reports it; rank 0 (the
    one given `info`) also writes `out/model.pt` (`gather_weights`) and `out/model-config.json`
    (what `strata export` needs), each whole or not at all, so a run that dies here leaves the
    previous ones."""
    import ray.train

    full = gather_weights(engine, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        _save_state(engine, tmp, row["step"], info)
        if info is not None and full is not None:
            with atomic_path(out / WEIGHTS) as partial:
                torch.save(full, partial)
            atomic_write_text(out / MODEL_CONFIG, json.dumps(info["model"], indent=2))
        ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(tmp))
