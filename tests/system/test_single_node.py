"""site.yml on this machine: Slurm (munge, slurmctld, slurmd without systemd) and Ray, for real."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import strata

pytestmark = pytest.mark.system

STACK = "tests/fixtures/Pulumi.test-slurm.yaml"
SLURM_CONF = "/tmp/strata-slurm-test/etc/slurm.conf"
STATE = Path("/tmp/strata-slurm-test/state")
SCRIPT = "/tmp/strata-slurm-test/ray-on-slurm.sbatch"


def slurm(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SLURM_CONF": SLURM_CONF,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster() -> Iterator[subprocess.CompletedProcess[str]]:
    first = strata("up", STACK)
    try:
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
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
    result = slurm(
        "sbatch",
        "--wait",
        "-N1",
        f"--output={tmp_path}/ray.out",
        f"--chdir={tmp_path}",
        SCRIPT,
        sys.executable,
        "-c",
        check,
    )
    output = (tmp_path / "ray.out").read_text()
    assert result.returncode == 0, output
    assert "ray nodes 1" in output
    assert not list(tmp_path.glob(".ray-slurm-*")), "the job's token directory is removed"


def test_down_stops_every_daemon() -> None:
    # Runs last in this module: the fixture's teardown happens after it, so bring the
    # cluster down here and check by PID file that munged, slurmctld and slurmd are gone.
    down = strata("down", STACK)
    assert down.returncode == 0, down.stderr[-3000:]
    assert not list(STATE.glob("*.pid")) and not list(STATE.glob("munge/*.pid"))
