"""A `backend: jax` job submitted like any other: Ray starts one JAX process per host, joined
by jax.distributed (two CPU "hosts" of one simulated device each here), and the run trains as
one process on the same mesh does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from strata.train.metrics import read_metrics
from tests.integration.helpers import exec_job, write_synthetic_shards

pytestmark = [pytest.mark.integration, pytest.mark.jax]


def write_job(tmp_path: Path, name: str) -> Path:
    job = {
        "kind": "train", "name": name, "backend": "jax", "seed": 1, "steps": 8,
        "data": {"shards": str(tmp_path / "shards")},
        "model": {"family": "llama", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_kv_heads": 2,
                  "ffn_hidden": 128, "seq_len": 64},
        "optimizer": {"lr": 0.01, "warmup_steps": 2},
        "batch": {"micro_batch_size": 2, "grad_accum_steps": 2},
        "workers": {"num_workers": 2, "cpus_per_worker": 1},
        "parallel": {"fsdp": 2}, "checkpoint": {"every_steps": 4},
        "output": {"dir": str(tmp_path / name)},
    }  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def test_two_ray_hosts_train_as_one_process_on_the_same_mesh(tmp_path: Path, ray_env: dict[str, str]) -> None:
    write_synthetic_shards(tmp_path / "shards")
    single = subprocess.run(
        [sys.executable, "-m", "strata.train.jax", str(write_job(tmp_path, "single"))],
        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-3000:]

    result = exec_job(write_job(tmp_path, "hosts"), ray_env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"2 JAX processes, coordinator [\d.]+:\d+", result.stderr)
    hosts, alone = (read_metrics(tmp_path / n / "metrics.jsonl") for n in ("hosts", "single"))
    assert [r["step"] for r in hosts] == list(range(1, 9)) and {r["devices"] for r in hosts} == {2}
    np.testing.assert_allclose([r["loss"] for r in hosts], [r["loss"] for r in alone], rtol=0, atol=1e-5)
    assert hosts[-1]["loss"] < hosts[0]["loss"]
    with (
        np.load(tmp_path / "hosts" / "model.npz") as split,
        np.load(tmp_path / "single" / "model.npz") as whole,
    ):
        assert split.files == whole.files
        for name in whole.files:
            np.testing.assert_allclose(split[name], whole[name], rtol=0, atol=1e-5, err_msg=name)
    assert sorted(p.name for p in (tmp_path / "hosts" / "checkpoints").iterdir()) == ["4", "8"]
