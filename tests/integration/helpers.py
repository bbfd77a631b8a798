"""Helpers for tests that start real processes: run the CLI, check that nothing is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from strata.local_ray import session_members

TEST_STACK = "tests/fixtures/Pulumi.test.yaml"
TEST_STATE_DIR = Path("/tmp/strata-ray-test")  # ray.state_dir in the test stack
TEST_PORTS = (26379, 28265)
STEPS = 24  # of the small training jobs of train_job()


def strata(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run the `strata` CLI of this environment; output is captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "strata", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left_running(pid: int | None) -> None:
    """The recorded Ray pid is gone, no process of its session remains, and the ports are closed."""
    assert not (TEST_STATE_DIR / "ray.pid").exists()
    if pid is not None:
        assert not Path(f"/proc/{pid}").exists()
        assert session_members(pid) == []
    for port in TEST_PORTS:
        assert not port_open(port), f"port {port} still open"


def train_job(
    tmp_path: Path, name: str, *, zero: int = 2, workers: int = 2, steps: int = STEPS, extra: str = ""
) -> Path:
    """A small Llama job on the `shards` fixture's data: 2 CPU workers, checkpoints every 4 steps."""
    job = tmp_path / f"{name}-{workers}.yaml"
    job.write_text(
        f"kind: train\nname: {name}\ndata: {{shards: {tmp_path / 'shards'}}}\n"
        "model: {family: llama, n_layers: 2, d_model: 64, n_heads: 4, n_kv_heads: 2, seq_len: 64}\n"
        f"optimizer: {{lr: 0.01, warmup_steps: 2}}\nzero: {{stage: {zero}}}\n"
        f"batch: {{micro_batch_size: 4, global_batch_size: 8}}\nsteps: {steps}\n"
        "checkpoint: {every_steps: 4, keep: 2, max_failures: 2}\n"
        f"workers: {{num_workers: {workers}, cpus_per_worker: 1}}\noutput: {{dir: {tmp_path / name}}}\n{extra}"
    )
    return job
