"""Helpers for tests that start real processes: run the CLI, check that nothing is left running,
write small jobs."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from strata.local_ray import local_ray, session_members
from strata.pipeline.shards import TokenizedDocument, write_shards

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


class SharedRay:
    """One `local_ray()` head for the whole package, started on first use.

    `strata up` heads need Ray's fixed agent port, which this head holds too, so the tests
    that bring up a stack call `stop()` first (a later `env()` starts it again).
    """

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self._env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        if self._env is None:
            self._stack = contextlib.ExitStack()
            self._env = self._stack.enter_context(local_ray())
        return self._env

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._env = None, None


def exec_job(job: Path, ray_env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run a job file (absolute paths) with `strata exec` on a running Ray: what `strata run`
    runs once it has started its head. `ray_env` is the `ray_env` fixture's environment."""
    return subprocess.run(
        [sys.executable, "-m", "strata", "exec", str(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**ray_env, "PYTHONUNBUFFERED": "1"},
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


def write_synthetic_shards(out_dir: Path) -> Path:
    """Token shards of 80 synthetic documents (400 tokens each, vocabulary 256) in out_dir."""
    docs = [(np.arange(start, start + 400) % 250 + 1).astype(np.uint16) for start in range(80)]
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=out_dir,
        tokens_per_shard=8192,
        seed=3,
        vocab_size=256,
        eot_id=0,
    )
    return out_dir


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


def make_job(tmp_path: Path, name: str, corpus: Path | None = None) -> Path:
    """A pipeline job on `corpus`, by default tmp_path/corpus.jsonl written here: the demo's
    first 400 documents, a broken JSON line and an empty text."""
    if corpus is None:
        lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:400]
        corpus = tmp_path / "corpus.jsonl"
        corpus.write_text("\n".join([*lines, "{broken json", json.dumps({"id": "e", "text": ""})]) + "\n")
    job = tmp_path / f"{name}.yaml"
    job.write_text(
        f"kind: pipeline\nname: {name}\ninput: {{paths: [{corpus}]}}\n"
        f"tokenizer: {{vocab_size: 1024}}\nshards: {{tokens_per_shard: 20000}}\noutput: {{dir: {tmp_path / name}}}\n"
    )
    return job
