"""What a training checkpoint was made from, and whether a job may resume from it.

Rank 0 writes `strata-checkpoint.json` into every checkpoint it reports. Before a job
starts, the launcher reads the newest one under the job's Ray storage and refuses to
resume when the checkpoint cannot continue this job: another model shape, seed or
global batch (the sample sequence would differ) or another ZeRO stage. ZeRO 1-3 state
saved by another number of ranks is first converted to DeepSpeed's universal checkpoint
(whole tensors per parameter), which any number of ranks loads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from strata.errors import JobError
from strata.spec.train import TrainJob
from strata.train.models import ModelConfig, describe

logger = logging.getLogger(__name__)
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
        "zero_stage": job.zero.stage,
        "pipeline_stages": job.parallel.pipeline_stages,
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
    for key in ("seed", "global_batch_size", "zero_stage", "pipeline_stages"):
        if saved[key] != wanted[key]:
            raise JobError(
                f"checkpoint {where} was trained with {key} {saved[key]}, the job asks for {wanted[key]}: "
                f"the run could not continue the same way; {fix}"
            )
    if saved["pipeline_stages"] > 1 and saved["world_size"] != wanted["world_size"]:
        raise JobError(
            f"checkpoint {where} holds the pipeline stages of {saved['world_size']} workers and the job asks "
            f"for {wanted['world_size']}: a pipelined run resumes on the same number of workers; {fix}"
        )
    logger.info(
        "resuming %s on %d workers (it was written by %d)", where, wanted["world_size"], saved["world_size"]
    )
    return directory, saved
