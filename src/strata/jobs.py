"""Run job declarations: in this process on a connected Ray, on a private local Ray, or by
submitting them to a running cluster through Ray's job submission API."""

from __future__ import annotations

import asyncio
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from strata.cluster import Connection
from strata.errors import JobError
from strata.local_ray import local_ray
from strata.provenance import STACK_ENV
from strata.spec import PipelineJob, SweepJob, TrainJob

logger = logging.getLogger(__name__)
Job = PipelineJob | TrainJob | SweepJob


def resolve_paths(job: Job) -> Job:
    """A copy of the job whose file paths are absolute, so it runs from any directory."""
    if isinstance(job, PipelineJob):
        return job.model_copy(
            update={
                "input": job.input.model_copy(
                    update={"paths": [p if "://" in p else str(Path(p).resolve()) for p in job.input.paths]}
                ),
                "collect": job.collect.model_copy(
                    update={"dir": str(Path(job.collect.dir).resolve()) if job.collect.dir else ""}
                ),
                "output": job.output.model_copy(update={"dir": str(Path(job.output.dir).resolve())}),
            }
        )
    return job.model_copy(
        update={
            "data": job.data.model_copy(update={"shards": str(Path(job.data.shards).resolve())}),
            "output": job.output.model_copy(update={"dir": str(Path(job.output.dir).resolve())}),
        }
    )


def execute(job: Job) -> dict[str, Any]:
    """Run a job on the Ray this process is connected to; return its summary."""
    if isinstance(job, PipelineJob):
        from strata.pipeline.run import run_pipeline

        return run_pipeline(job)
    if isinstance(job, SweepJob):
        from strata.sweep import run_sweep

        return run_sweep(job)
    from strata.train.launch import run_training

    return run_training(job)


def execute_file(path: Path) -> dict[str, Any]:
    """`strata exec`: record the run manifest of a job file, then run the job."""
    from strata.provenance import write_run_manifest
    from strata.spec import load_job

    job = load_job(path)
    write_run_manifest(job, path)
    return execute(job)


def run_locally(job: Job) -> None:
    """`strata run`: start a private Ray head, run the job in a process joined to it, stop Ray."""
    job_file = write_resolved(job)
    with local_ray() as env:
        result = subprocess.run([sys.executable, "-m", "strata", "exec", str(job_file)], env=env, check=False)
    if result.returncode != 0:
        raise JobError(f"job {job.name} failed (exit code {result.returncode}); its log is above")


def write_resolved(job: Job) -> Path:
    """Write the job with absolute paths next to its outputs; that file is what runs."""
    resolved = resolve_paths(job)
    out = Path(resolved.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "job.yaml"
    path.write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    return path


AGENT_WAIT_S = 120


def _submit_when_ready(client: Any, **job: Any) -> str:
    """Submit; while a freshly started head's job agent is not up yet, wait and try again."""
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return str(client.submit_job(**job))
        except RuntimeError as error:
            if "No available agent" not in str(error) or time.monotonic() > deadline:
                raise
            logger.info("the cluster's job agent is not up yet; submitting again in 2 s")
            time.sleep(2)


def submit(job: Job, connection: Connection) -> None:
    """Submit a job to a running cluster, stream its logs until it ends, and raise JobError
    unless it succeeds. Interrupting the stream leaves the job running on the cluster.

    The entrypoint is `python -m strata exec <resolved job>`: the job file and its
    absolute paths must be visible on the head (this machine, or shared storage).
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    job_file = write_resolved(job)
    try:
        token = Path(connection.token_path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise JobError(
            f"cannot read the cluster's auth token: {exc}; run `strata up {connection.stack}`"
        ) from None
    client = JobSubmissionClient(connection.dashboard_url, headers={"Authorization": f"Bearer {token}"})
    submission_id = _submit_when_ready(
        client,
        entrypoint=f"python -m strata exec {shlex.quote(str(job_file))}",
        metadata={"strata_job": job.name},
        runtime_env={"env_vars": {STACK_ENV: f"{connection.stack}:{connection.instance_type}"}},
    )
    logger.info("submitted %s as %s to %s", job.name, submission_id, connection.dashboard_url)

    async def stream() -> None:
        async for lines in client.tail_job_logs(submission_id):
            sys.stdout.write(lines)
            sys.stdout.flush()

    asyncio.run(stream())
    deadline = time.monotonic() + 60
    status = client.get_job_status(submission_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        time.sleep(1)
        status = client.get_job_status(submission_id)
    if status != JobStatus.SUCCEEDED:
        info = client.get_job_info(submission_id)
        raise JobError(f"job {job.name} ({submission_id}) ended {status}: {info.message}")
    logger.info("job %s succeeded", job.name)
