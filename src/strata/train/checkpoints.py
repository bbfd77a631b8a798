"""What a training checkpoint was made from, and whether a job may resume from it.

Rank 0 writes `strata-checkpoint.json` into every checkpoint it reports. Before a job
starts, the launcher reads the newest one under the job's Ray storage and refuses to
resume when the checkpoint cannot continue this job: another model shape, seed or
global batch (the sample sequence would differ), another ZeRO stage, or ZeRO-partitioned
state on another number of ranks.
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


def checkpoint_info(job: TrainJob, cfg: ModelConfig, step: int) -> dict[str, Any]:
    """The facts a later run compares against (written by rank 0 into each checkpoint)."""
    return {
        "job": job.name,
        "step": step,
        "model": describe(cfg),
        "seed": job.seed,
        "global_batch_size": job.global_batch,
        "zero_stage": job.zero.stage,
        "world_size": job.workers.num_workers,
    }


def latest_checkpoint_info(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint's info under a Ray Train run directory, if any."""
    found = []
    for path in root.glob(f"*/{CHECKPOINT_INFO}"):
        try:
            found.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("%s: unreadable (%s); ignored", path, exc)
    return max(found, key=lambda item: item[1]["step"]) if found else None


def check_resumable(job: TrainJob, cfg: ModelConfig, root: Path) -> dict[str, Any] | None:
    """Raise JobError if the newest checkpoint under `root` cannot continue `job`; return its info."""
    latest = latest_checkpoint_info(root)
    if latest is None:
        foreign = sorted(root.glob("checkpoint_*"))
        if foreign:
            raise JobError(
                f"{foreign[-1]}: a checkpoint without {CHECKPOINT_INFO} (from an older Strata or another "
                f"program) cannot be checked against this job; move {root} away or use another output.dir"
            )
        return None
    path, saved = latest
    wanted = checkpoint_info(job, cfg, saved["step"])
    where = f"{path.parent} (step {saved['step']})"
    fix = "use another output.dir or job name for a new run, or restore the job as it was"
    model_diff = {
        k: (saved["model"].get(k), v) for k, v in wanted["model"].items() if saved["model"].get(k) != v
    }
    if model_diff:
        listed = ", ".join(
            f"{k}: {old} in the checkpoint, {new} in the job" for k, (old, new) in model_diff.items()
        )
        raise JobError(f"checkpoint {where} holds another model ({listed}); {fix}")
    for key in ("seed", "global_batch_size", "zero_stage"):
        if saved[key] != wanted[key]:
            raise JobError(
                f"checkpoint {where} was trained with {key} {saved[key]}, the job asks for {wanted[key]}: "
                f"the run could not continue the same way; {fix}"
            )
    if saved["world_size"] != wanted["world_size"] and saved["zero_stage"] > 0:
        raise JobError(
            f"checkpoint {where} holds ZeRO-{saved['zero_stage']} shards of {saved['world_size']} ranks and "
            f"the job asks for {wanted['world_size']} workers; a ZeRO checkpoint resumes on the same number "
            "of ranks (stage 0 keeps whole state and resumes on any)"
        )
    logger.info(
        "resuming %s on %d workers (it was written by %d)", where, wanted["world_size"], saved["world_size"]
    )
    return saved
