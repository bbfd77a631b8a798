"""Run job declarations: in this process on a connected Ray, on a private local Ray, or by
submitting them to a running cluster through Ray's job submission API."""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from strata.connection import Connection
from strata.errors import JobError
from strata.job_kinds import RunTarget, kind_of, resolve_paths
from strata.local_ray import local_ray
from strata.spec.load import Job

logger = logging.getLogger(__name__)
LOCAL_TARGET = RunTarget(stack="local", instance_type="cpu")


def execute(job: Job, target: RunTarget) -> dict[str, Any]:
    """`strata exec`: run a job on the Ray this process is connected to; return its summary.

    The job's checks run first and write nothing, so a refused job leaves no file; then
    its record (job.yaml, run-manifest.json) is written and the job starts.
    """
    from strata.provenance import write_run_records

    job = resolve_paths(job)
    start = kind_of(job).prepare(job, target)
    write_run_records(job, target)
    return start()


def exec_arguments(job: Job, target: RunTarget) -> list[str]:
    """The arguments of `strata exec` that run `job` (paths made absolute) on `target`: the job
    travels inline, so nothing is written before it runs and no job file must be shared."""
    return [
        "exec",
        "--stack",
        target.stack,
        "--instance-type",
        target.instance_type,
        "--job-json",
        json.dumps(resolve_paths(job).model_dump(mode="json"), separators=(",", ":")),
    ]


def run_locally(job: Job) -> None:
    """`strata run`: start a private Ray head, run the job in a process joined to it, stop Ray."""
    command = [sys.executable, "-m", "strata", *exec_arguments(job, LOCAL_TARGET)]
    with local_ray() as env:
        result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        raise JobError(f"job {job.name} failed (exit code {result.returncode}); its log is above")


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

    The entrypoint is `<python> -m strata exec ... --job-json <job>`, with the Python beside
    the nodes' `ray` (`Connection.python`; a bare `python` would be whatever the head's PATH
    finds first): the job's absolute paths must be visible on the head (this machine, or
    shared storage).
    """
    from ray.job_submission import JobStatus, JobSubmissionClient

    target = RunTarget(stack=connection.stack, instance_type=connection.instance_type)
    try:
        token = Path(connection.token_path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise JobError(
            f"cannot read the cluster's auth token: {exc}; run `strata up {connection.stack}`"
        ) from None
    client = JobSubmissionClient(connection.dashboard_url, headers={"Authorization": f"Bearer {token}"})
    submission_id = _submit_when_ready(
        client,
        entrypoint=shlex.join([connection.python, "-m", "strata", *exec_arguments(job, target)]),
        metadata={"strata_job": job.name},
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
