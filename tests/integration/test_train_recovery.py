"""Killing a training worker mid-run: Ray Train restarts the workers from the last checkpoint
and the run ends with the same final loss as an uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from strata.pipeline.shards import write_shards
from strata.train.metrics import read_metrics

pytestmark = pytest.mark.integration
STEPS = 24


def _job(tmp_path: Path, name: str) -> Path:
    job = tmp_path / f"{name}.yaml"
    job.write_text(
        f"kind: train\nname: {name}\ndata: {{shards: {tmp_path / 'shards'}}}\n"
        "model: {family: llama, n_layers: 2, d_model: 64, n_heads: 4, n_kv_heads: 2, seq_len: 64}\n"
        "optimizer: {lr: 0.01, warmup_steps: 2}\nzero: {stage: 2}\n"
        f"batch: {{micro_batch_size: 4, grad_accum_steps: 1}}\nsteps: {STEPS}\n"
        "checkpoint: {every_steps: 4, keep: 2, max_failures: 2}\n"
        f"workers: {{num_workers: 2, cpus_per_worker: 1}}\noutput: {{dir: {tmp_path / name}}}\n"
    )
    return job


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        pid = _parent(pid)
    return False


def _train_workers(run: subprocess.Popen[bytes]) -> list[int]:
    """RayTrainWorker processes under the Ray head that this `strata run` started."""
    workers = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc / "cmdline").read_bytes().startswith(b"ray::RayTrainWorker") and _descends_from(
                int(proc.name), run.pid
            ):
                workers.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return workers


def test_a_killed_worker_resumes_from_the_last_checkpoint_with_the_same_final_loss(tmp_path: Path) -> None:
    docs = [(np.arange(start, start + 400) % 250 + 1).astype(np.uint16) for start in range(80)]
    write_shards(
        docs=docs, out_dir=tmp_path / "shards", tokens_per_shard=8192, seed=3, vocab_size=256, eot_id=0
    )
    whole = subprocess.run(
        [sys.executable, "-m", "strata", "run", str(_job(tmp_path, "whole"))],
        capture_output=True,
        check=False,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]

    metrics = tmp_path / "killed" / "metrics.jsonl"
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(_job(tmp_path, "killed"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        rows = read_metrics(metrics) if metrics.is_file() else []
        workers = _train_workers(run)
        if rows and rows[-1]["step"] >= 10 and workers:
            killed = workers[-1]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.2)
    _, stderr = run.communicate(timeout=600)
    assert killed is not None, "the run ended before a worker could be killed"
    assert run.returncode == 0, stderr[-3000:]
    resumed_at = re.search(rb"resumed from the checkpoint of step (\d+)", stderr)
    assert resumed_at is not None and 4 <= int(resumed_at.group(1)) <= 12, stderr[-3000:]

    expected = read_metrics(tmp_path / "whole" / "metrics.jsonl")
    resumed = read_metrics(metrics)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))  # each step once, in order
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in expected], abs=1e-6)
    assert json.loads((tmp_path / "killed" / "model-config.json").read_text())["family"] == "llama"
