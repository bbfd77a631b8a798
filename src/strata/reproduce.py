"""`strata reproduce MANIFEST`: run a recorded job again and compare what it produced."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from strata import jobs
from strata.cluster import load_connection
from strata.errors import JobError
from strata.provenance import changed_inputs, load_run_manifest
from strata.spec import PipelineJob, SweepJob, TrainJob
from strata.spec.load import JOB_KINDS
from strata.train.metrics import read_metrics

logger = logging.getLogger(__name__)


def _outputs_fingerprint(job: PipelineJob | TrainJob | SweepJob) -> dict[str, Any]:
    """What must come out the same: shard checksums, or the per-step losses."""
    out = Path(job.output.dir)
    if isinstance(job, PipelineJob):
        manifest = json.loads((out / "shards" / "manifest.json").read_text(encoding="utf-8"))
        return {"shards": [s["sha256"] for s in manifest["shards"]]}
    if isinstance(job, TrainJob):
        return {"losses": [row["loss"] for row in read_metrics(out / "metrics.jsonl")]}
    return {
        "losses": [
            json.loads(line)["final_loss"] for line in (out / "results.jsonl").read_text().splitlines()
        ]
    }


def reproduce(manifest_path: Path, out_dir: Path | None = None, stack: str | None = None) -> dict[str, Any]:
    """Check the inputs are unchanged, rerun the job into `out_dir`, compare its outputs."""
    manifest = load_run_manifest(manifest_path)
    changed = changed_inputs(manifest)
    if changed:
        raise JobError(f"{manifest_path}: inputs changed since the recorded run: {', '.join(changed)}")
    recorded = manifest["job"]
    original = JOB_KINDS[recorded["kind"]].model_validate(recorded)
    target = out_dir or Path(f"{original.output.dir.rstrip('/')}-reproduced")
    job = original.model_copy(update={"output": original.output.model_copy(update={"dir": str(target)})})
    if stack:
        jobs.submit(job, load_connection(stack))
    else:
        jobs.run_locally(job)
    before, after = _outputs_fingerprint(original), _outputs_fingerprint(job)
    if before != after:
        raise JobError(f"reproduction of {original.name} in {target} differs from {original.output.dir}")
    logger.info("reproduced %s in %s: outputs identical", original.name, target)
    return {"job": original.name, "output": str(target), "identical": True, **after}
