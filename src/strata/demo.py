"""`strata demo`: up local → pipeline → train → report → down, all on this machine."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from strata import cluster, jobs
from strata.job_kinds import redirect
from strata.report import write_report
from strata.spec import PipelineJob, TrainJob, load_pipeline_job, load_train_job

logger = logging.getLogger(__name__)
PIPELINE_JOB = Path("jobs/demo/pipeline.yaml")
TRAIN_JOB = Path("jobs/demo/train.yaml")


def demo_jobs(out: Path) -> tuple[PipelineJob, TrainJob]:
    """The demo's job files, with every output placed under `out`."""
    pipeline = redirect(load_pipeline_job(PIPELINE_JOB), out / "pipeline")
    train = redirect(load_train_job(TRAIN_JOB), out / "train")
    return pipeline, train.with_values({"data.shards": str(out / "pipeline" / "shards")})


def run_demo(stack: str, out: Path) -> Path:
    """Run the whole demo; the cluster is brought down even when a step fails."""
    pipeline, train = demo_jobs(out)
    timings: dict[str, float] = {}
    started = time.monotonic()
    connection = cluster.up(stack).connection
    timings["up (Ansible, Ray head)"] = time.monotonic() - started
    try:
        for label, job in (("pipeline", pipeline), ("train", train)):
            t0 = time.monotonic()
            jobs.submit(job, connection)
            timings[f"{label} job"] = time.monotonic() - t0
    finally:
        t0 = time.monotonic()
        cluster.down(stack)
        timings["down"] = time.monotonic() - t0
    timings["total"] = time.monotonic() - started
    report = write_report(out / "pipeline", out / "train", out, timings)
    logger.info("report: %s", report)
    return report
