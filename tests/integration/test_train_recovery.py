"""Interrupted training: a killed worker (Ray Train restarts the group from the last
checkpoint) and a killed job resubmitted on another worker count both end with the
losses of an uninterrupted run; a checkpoint or worker group that cannot work is refused."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strata.train.metrics import read_metrics
from tests.integration.helpers import STEPS, exec_job, train_job

pytestmark = pytest.mark.integration


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _parent(pid)
    return False


def _descendants(run: subprocess.Popen[bytes], cmdline_prefix: bytes) -> list[int]:
    """Processes under this `strata run` whose command line starts with the prefix."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "cmdline").read_bytes().startswith(cmdline_prefix) and _descends_from(
                int(proc.name), run.pid
            ):
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _signal_after_step(
    run: subprocess.Popen[bytes], metrics: Path, step: int, cmdline_prefix: bytes, sig: int = signal.SIGKILL
) -> int:
    """Signal the last process matching the prefix once metrics.jsonl has reached `step`."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        rows = read_metrics(metrics) if metrics.is_file() else []
        targets = _descendants(run, cmdline_prefix)
        if rows and rows[-1]["step"] >= step and targets:
            os.kill(targets[-1], sig)
            return targets[-1]
        time.sleep(0.2)
    raise AssertionError(f"the run ended before step {step}; nothing was signalled")


def test_a_killed_worker_resumes_from_the_last_checkpoint_with_the_same_final_loss(
    tmp_path: Path, shards: Path, zero3_run: Path
) -> None:
    """Ray Train restarts the worker group from the last checkpoint; the run ends like
    `zero3_run`, the same job on the same shards without interruption."""
    metrics = tmp_path / "killed" / "metrics.jsonl"
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(train_job(tmp_path, "killed", zero=3))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _signal_after_step(run, metrics, 10, b"ray::RayTrainWorker")
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    resumed_at = re.search(rb"resumed from the checkpoint of step (\d+)", stderr)
    assert resumed_at is not None and 4 <= int(resumed_at.group(1)) <= 12, stderr[-3000:]

    expected = read_metrics(zero3_run / "metrics.jsonl")
    resumed = read_metrics(metrics)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))  # each step once, in order
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in expected], abs=1e-6)
    assert json.loads((tmp_path / "killed" / "model-config.json").read_text())["family"] == "llama"


def test_a_killed_job_resubmitted_on_one_worker_continues_the_same_run(
    tmp_path: Path, shards: Path, ray_env: dict[str, str], zero3_run: Path
) -> None:
    """ZeRO-3 shards of two ranks continue on one through a universal checkpoint and end
    like `zero3_run`, the same job on the same shards without interruption."""
    zero = 3

    # The job's own process dies (a crash, a preempted head): `strata run` stops its Ray.
    metrics = tmp_path / "job" / "metrics.jsonl"
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(train_job(tmp_path, "job", zero=zero))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    _signal_after_step(run, metrics, 9, f"{sys.executable}\0-m\0strata\0exec".encode())
    run.communicate(timeout=600)
    assert run.returncode != 0

    again = exec_job(train_job(tmp_path, "job", zero=zero, workers=1), ray_env)  # same global batch of 8
    assert again.returncode == 0, again.stderr[-3000:]
    resumed_at = re.search(r"resumed from the checkpoint of step (\d+)( \(universal\))?", again.stderr)
    assert resumed_at is not None and int(resumed_at.group(1)) in (4, 8), again.stderr[-3000:]
    assert resumed_at.group(2) is not None  # loaded from the universal copy
    expected = read_metrics(zero3_run / "metrics.jsonl")
    resumed = read_metrics(metrics)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in expected], abs=1e-5)

    # The same output with another model shape is refused before anything runs or is written.
    wider = train_job(tmp_path, "job", zero=zero).read_text().replace("d_model: 64", "d_model: 128")
    (tmp_path / "wider.yaml").write_text(wider)
    refused = exec_job(tmp_path / "wider.yaml", ray_env)
    assert refused.returncode != 0
    assert "holds another model (d_model: 64 in the checkpoint, 128 in the job" in refused.stderr
    assert read_metrics(metrics) == resumed


def test_workers_the_cluster_cannot_place_are_refused(
    tmp_path: Path, shards: Path, ray_env: dict[str, str]
) -> None:
    job = (
        train_job(tmp_path, "big", extra="")
        .read_text()
        .replace("cpus_per_worker: 1", "cpus_per_worker: 1000")
    )
    (tmp_path / "big.yaml").write_text(job)
    refused = exec_job(tmp_path / "big.yaml", ray_env)
    assert refused.returncode != 0
    assert "2 workers need 2000 CPU (cpus_per_worker 1000); the Ray cluster has" in refused.stderr


def test_a_rank_that_stops_answering_is_named(tmp_path: Path, shards: Path) -> None:
    text = train_job(tmp_path, "hang").read_text()
    text = text.replace("cpus_per_worker: 1}", "cpus_per_worker: 1, collective_timeout_s: 10}")
    text = text.replace("every_steps: 4", "every_steps: 0")  # no checkpoint: only collectives wait
    text = text.replace(f"steps: {STEPS}", "steps: 400")  # stopped long before the end
    (tmp_path / "hang.yaml").write_text(text.replace("max_failures: 2", "max_failures: 0"))
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(tmp_path / "hang.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    stopped = _signal_after_step(
        run, tmp_path / "hang" / "metrics.jsonl", 3, b"ray::RayTrainWorker", signal.SIGSTOP
    )
    try:
        _, stderr = run.communicate(timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGCONT)
        if run.poll() is None:
            run.terminate()
            run.wait(timeout=60)
    assert run.returncode != 0
    # The job's own error names it (from the other rank's record, not from its log lines).
    named = re.search(
        rb"training job 'hang' failed: rank \d reports: "
        rb"rank (\d) \(pid (\d+) on [^)]+\) stopped answering",
        stderr,
    )
    assert named is not None, stderr[-3000:]
    assert int(named.group(2)) == stopped
