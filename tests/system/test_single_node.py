"""site.yml on this machine: Slurm (munge, slurmctld, slurmd without systemd) and Ray, for real."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import strata

pytestmark = pytest.mark.system

STACK = "tests/fixtures/Pulumi.test-slurm.yaml"
SLURM_CONF = "/tmp/strata-slurm-test/etc/slurm.conf"
STATE = Path("/tmp/strata-slurm-test/state")
SCRIPT = "/tmp/strata-slurm-test/ray-on-slurm.sbatch"
GCS_PORT = yaml.safe_load(Path("tests/fixtures/inventory-slurm.yml").read_text())["all"]["vars"][
    "ray_slurm_gcs_port"
]


def slurm(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SLURM_CONF": SLURM_CONF,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def cancel_leftover_jobs() -> None:
    """Cancel jobs an interrupted earlier run left in the test cluster's saved state, so the
    node is idle; this cluster and its state directory are the tests' own."""
    leftover = slurm("squeue", "--noheader", "--format=%i").stdout.split()
    if not leftover:
        return
    slurm("scancel", *leftover)
    deadline = time.monotonic() + 60
    while slurm("squeue", "--noheader").stdout.strip() and time.monotonic() < deadline:
        time.sleep(1)


def sbatch_wait(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a batch job to its end under a 4-minute Slurm time limit (Slurm ends a hung job, so
    no job outlives the test); returns sbatch's result and the job's output."""
    output = tmp_path / "job.out"
    result = slurm(
        "sbatch", "--wait", "--time=4", "-N1", f"--output={output}", f"--chdir={tmp_path}", *args, timeout=330
    )
    return result, output.read_text() if output.exists() else "(no output)"


@pytest.fixture(scope="module")
def cluster() -> Iterator[subprocess.CompletedProcess[str]]:
    first = strata("up", STACK)
    try:
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        cancel_leftover_jobs()
        yield strata("up", STACK)
    finally:
        down = strata("down", STACK)
        assert down.returncode == 0, down.stderr[-3000:]


def test_the_node_is_idle_in_slurm(cluster: subprocess.CompletedProcess[str]) -> None:
    result = slurm("sinfo", "--noheader", "--format=%P %T %D")
    assert result.stdout.split() == ["main*", "idle", "1"], result.stdout + result.stderr


def test_srun_and_sbatch_run_jobs_and_sacct_accounts_for_them(
    cluster: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert slurm("srun", "-N1", "echo", "hello from srun").stdout.strip() == "hello from srun"
    script = tmp_path / "job.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH -N1 -o {tmp_path}/job.out\necho batch $SLURM_JOB_NUM_NODES\n")
    result = slurm("sbatch", "--parsable", "--wait", str(script))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "job.out").read_text().strip() == "batch 1"
    job_id = result.stdout.strip()
    accounted = slurm(
        "sacct", "--noheader", "--parsable2", f"--jobs={job_id}", "--format=JobID,State,ExitCode"
    )
    assert f"{job_id}|COMPLETED|0:0" in accounted.stdout.splitlines(), accounted.stdout + accounted.stderr


def test_a_second_up_changes_nothing(cluster: subprocess.CompletedProcess[str]) -> None:
    assert cluster.returncode == 0, cluster.stderr[-3000:]
    assert "localhost (changed 0)" in cluster.stdout + cluster.stderr


def test_a_ray_job_runs_on_the_cluster(cluster: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    # The demo pipeline on its first 300 documents: the job's stages, not the corpus, are tested.
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(Path("data/demo/corpus.jsonl").read_text().splitlines(keepends=True)[:300]))
    demo = Path("jobs/demo/pipeline.yaml").read_text()
    job = tmp_path / "pipeline.yaml"
    job.write_text(
        demo.replace("runs/demo/pipeline", str(tmp_path / "out")).replace(
            "data/demo/corpus.jsonl", str(corpus)
        )
    )
    result = strata("submit", str(job), "--stack", STACK)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "out" / "shards" / "manifest.json").is_file()


def test_a_ray_cluster_starts_inside_a_slurm_allocation(
    cluster: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    check = "import ray; ray.init(); print('ray nodes', len([n for n in ray.nodes() if n['Alive']]))"
    result, output = sbatch_wait(tmp_path, SCRIPT, sys.executable, "-c", check)
    assert result.returncode == 0, output
    assert "ray nodes 1" in output
    assert not list(tmp_path.glob(".ray-slurm-*")), "the job's token directory is removed"


def test_a_taken_gcs_port_fails_the_ray_on_slurm_job_at_once(
    cluster: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    # Another process holds the GCS port: the job must stop at once and say why, not wait
    # for a cluster that never comes (a CI run once hung here until its timeout).
    with socket.create_server(("127.0.0.1", GCS_PORT)):
        result, output = sbatch_wait(tmp_path, SCRIPT, "echo", "the command must not run")
    assert result.returncode != 0, output
    assert f"ray-on-slurm: port {GCS_PORT} on localhost is in use" in output, output
    assert "the command must not run" not in output


def test_down_stops_every_daemon() -> None:
    # Runs last in this module: the fixture's teardown happens after it, so bring the
    # cluster down here and check by PID file that munged, slurmctld and slurmd are gone.
    down = strata("down", STACK)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not list(STATE.glob("*.pid")) and not list(STATE.glob("munge/*.pid"))
