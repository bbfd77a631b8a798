"""The JAX trainer on simulated CPU devices: mesh shapes agree, it matches the DeepSpeed
trainer from the same weights and shards, parameters are really split, and a killed run
resumes with the uninterrupted losses (also on another mesh shape)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.spec.load import load_train_job
from strata.spec.models import build_model_config
from strata.train.export import export_hf
from strata.train.metrics import read_metrics

pytestmark = pytest.mark.jax
WORKER = Path(__file__).with_name("worker.py")
# A small Llama with grouped-query attention (4 query heads on 2 key/value heads).
MODEL = {"family": "llama", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_kv_heads": 2,
         "ffn_hidden": 128, "seq_len": 64}  # fmt: skip
PEAK = 1e12  # FLOP/s per device the uninterrupted run's MFU is against
LEARNED = 0.3  # nats the loss falls over the 16 steps at least (measured: 6.23 → 5.57)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Documents that count up by a stride of 1-3 from a random start: learnable in a few steps."""
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(80):
        start, stride, length = rng.integers(1, 500), rng.integers(1, 4), rng.integers(50, 400)
        docs.append(((start + stride * np.arange(length)) % 499 + 1).astype(np.uint16))
    out = tmp_path_factory.mktemp("jax") / "shards"
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=out,
        tokens_per_shard=4096,
        seed=3,
        vocab_size=500,
        eot_id=0,
    )
    return out


@pytest.fixture(scope="module")
def whole(shards: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """The uninterrupted run on fsdp 2 × tensor 2 (checkpoints every 4 steps): its directory and losses."""
    directory = tmp_path_factory.mktemp("whole")
    write_job(directory, shards)
    return directory, run("jax", directory, peak=PEAK)["losses"]


def write_job(directory: Path, shards: Path, **overrides: Any) -> Path:
    """A jax train job (fsdp 2 × tensor 2 unless overridden) writing under `directory`."""
    job: dict[str, Any] = {
        "kind": "train", "name": "jax-test", "seed": 5, "backend": "jax", "steps": 16,
        "data": {"shards": str(shards)}, "model": MODEL,
        "optimizer": {"lr": 3e-3, "warmup_steps": 3, "grad_clip": 1.0},
        "batch": {"micro_batch_size": 4, "grad_accum_steps": 2}, "workers": {"num_workers": 1},
        "parallel": {"fsdp": 2, "tensor": 2}, "checkpoint": {"every_steps": 4},
        "output": {"dir": str(directory / "out")},
    }  # fmt: skip
    job.update(overrides)
    path = directory / "job.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(job))
    return path


def run(mode: str, directory: Path, *, devices: int = 4, **args: Any) -> dict[str, Any]:
    """Run worker.py in a fresh process with `devices` simulated CPU devices."""
    out = directory / f"{mode}-result.json"
    arguments = directory / f"{mode}-args.json"
    arguments.write_text(
        json.dumps({"job": str(directory / "job.yaml"), "devices": devices, "out": str(out), **args})
    )
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, str(WORKER), mode, str(arguments)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_a_2x2_mesh_gives_the_single_device_losses(
    shards: Path, whole: tuple[Path, list[float]], tmp_path: Path
) -> None:
    write_job(tmp_path, shards, parallel={"fsdp": 1, "tensor": 1})
    single = run("jax", tmp_path, devices=1)["losses"]
    assert len(whole[1]) == len(single) == 16
    np.testing.assert_allclose(whole[1], single, rtol=0, atol=1e-5)
    assert single[-1] < single[0] - LEARNED


def test_each_step_reports_its_mfu_against_the_peak_of_every_device(whole: tuple[Path, list[float]]) -> None:
    cfg = build_model_config(load_train_job(whole[0] / "job.yaml").model, 500)
    rows = read_metrics(whole[0] / "out" / "metrics.jsonl")
    assert len(rows) == 16
    for row in rows:
        expected = cfg.flops_per_token() * row["tokens_per_second"] / (4 * PEAK)
        assert row["mfu"] == pytest.approx(expected, rel=1e-9)


def test_the_finished_run_exports_to_transformers_with_the_jax_models_logits(
    whole: tuple[Path, list[float]], tmp_path: Path
) -> None:
    """`strata export --format hf` of a JAX run (fsdp 2 × tensor 2, gathered to model.npz)."""
    import torch
    from transformers import AutoModelForCausalLM

    export_hf(whole[0] / "out", tmp_path / "hf")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32)
    tokens = (np.arange(64).reshape(2, 32) * 7 % 499 + 1).tolist()
    expected = np.asarray(
        run("logits", tmp_path, devices=1, run=str(whole[0] / "out"), tokens=tokens)["logits"]
    )
    with torch.no_grad():
        got = model(torch.tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_each_device_holds_its_share_of_every_matrix_and_its_moments(shards: Path, tmp_path: Path) -> None:
    write_job(tmp_path, shards)
    placed = run("shards", tmp_path)
    for name, shares in {**placed["params"], **placed["moments"]}.items():
        expected = 1.0 if name.endswith("norm.weight") else 0.25  # split over fsdp 2 × tensor 2
        assert shares == [expected] * 4, name


@pytest.mark.ranks
def test_the_first_steps_match_the_deepspeed_trainer_from_the_same_weights(
    shards: Path, tmp_path: Path
) -> None:
    """Same job, shards and initial weights (the seeded torch model's state dict): DeepSpeed
    (ZeRO 0, one rank) and JAX (fsdp 2 × tensor 2) report the same losses."""
    init = tmp_path / "init.npz"
    write_job(tmp_path / "ds", shards, backend="deepspeed", steps=4, parallel={}, zero={"stage": 0})
    torch_losses = run("deepspeed", tmp_path / "ds", devices=1, init=str(init))["losses"]
    write_job(tmp_path / "jax", shards, steps=4)
    jax_losses = run("jax", tmp_path / "jax", init=str(init))["losses"]
    np.testing.assert_allclose(jax_losses, torch_losses, rtol=0, atol=1e-4)


def test_a_killed_run_resumes_with_the_uninterrupted_losses_on_this_or_another_mesh(
    shards: Path, whole: tuple[Path, list[float]], tmp_path: Path
) -> None:
    losses = whole[1]
    write_job(tmp_path / "killed", shards)
    assert run("jax", tmp_path / "killed", stop_after=6)["losses"] == pytest.approx(losses[:6], abs=1e-6)
    shutil.copytree(tmp_path / "killed/out", tmp_path / "moved/out")
    resumed = run("jax", tmp_path / "killed")["losses"]  # from the checkpoint of step 4
    np.testing.assert_allclose(resumed, losses[4:], rtol=0, atol=1e-6)
    metrics = [json.loads(line) for line in (tmp_path / "killed/out/metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in metrics] == list(range(1, 17))
    # The checkpoint saved on fsdp 2 × tensor 2 restores onto one device.
    write_job(tmp_path / "moved", shards, parallel={"fsdp": 1, "tensor": 1})
    one_device = run("jax", tmp_path / "moved", devices=1)["losses"]
    np.testing.assert_allclose(one_device, losses[4:], rtol=0, atol=1e-5)


def test_a_checkpoint_of_another_shape_is_refused(
    shards: Path, whole: tuple[Path, list[float]], tmp_path: Path
) -> None:
    shutil.copytree(whole[0] / "out", tmp_path / "out")
    write_job(tmp_path, shards, steps=20, seed=6, model={**MODEL, "ffn_hidden": 192})
    with pytest.raises(
        AssertionError, match=r"another job \(model.ffn_hidden: 128 in the checkpoint, 192 now, seed"
    ):
        run("jax", tmp_path)
