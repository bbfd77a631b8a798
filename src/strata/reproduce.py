"""`strata reproduce MANIFEST`: run a recorded job again and compare what it produced."""

from __future__ import annotations

import logging
from typing import Any

from strata import jobs
from strata.connection import load_connection
from strata.errors import JobError
from strata.job_kinds import job_from_data, kind_of, output_dir, redirect
from strata.provenance import changed_inputs, load_run_manifest
from strata.storage import Location

logger = logging.getLogger(__name__)


def reproduce(
    manifest_path: Location, out_dir: Location | None = None, stack: str | None = None
) -> dict[str, Any]:
    """Check the inputs are unchanged, rerun the job into `out_dir`, compare its outputs
    (what must come out the same is the job kind's fingerprint: shard checksums, losses).
    The manifest and both output folders may be local or on object storage (`s3://`)."""
    manifest = load_run_manifest(manifest_path)
    changed = changed_inputs(manifest)
    if changed:
        raise JobError(f"{manifest_path}: inputs changed since the recorded run: {', '.join(changed)}")
    original = job_from_data(manifest["job"], f"{manifest_path}: key `job`")
    before_dir = output_dir(original)
    target = out_dir or Location(f"{before_dir.url.rstrip('/')}-reproduced")
    job = redirect(original, target)
    if stack:
        jobs.submit(job, load_connection(stack))
    else:
        jobs.run_locally(job)
    fingerprint = kind_of(original).outputs_fingerprint
    before, after = fingerprint(before_dir), fingerprint(target)
    if before != after:
        raise JobError(f"reproduction of {original.name} in {target} differs from {before_dir}")
    logger.info("reproduced %s in %s: outputs identical", original.name, target)
    return {"job": original.name, "output": str(target), "identical": True, **after}
