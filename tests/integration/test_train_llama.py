"""A Llama job on Ray Train with ZeRO-3 (2 CPU workers): the whole model is saved and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from strata.train.export import export_hf
from tests.integration.helpers import strata

pytestmark = pytest.mark.integration


def test_zero3_run_saves_the_whole_model_and_exports_to_transformers(tmp_path: Path, shards: Path) -> None:
    job = tmp_path / "train.yaml"
    job.write_text(
        "kind: train\nname: llama-zero3\n"
        f"data: {{shards: {tmp_path / 'shards'}}}\n"
        "model: {family: llama, n_layers: 2, d_model: 64, n_heads: 4, n_kv_heads: 2, seq_len: 64}\n"
        "optimizer: {lr: 0.01, warmup_steps: 2}\nzero: {stage: 3}\n"
        "batch: {micro_batch_size: 4, grad_accum_steps: 1}\nsteps: 8\n"
        f"workers: {{num_workers: 2, cpus_per_worker: 1}}\noutput: {{dir: {tmp_path / 'out'}}}\n"
    )
    result = strata("run", str(job))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((tmp_path / "out" / "model-config.json").read_text())
    weights = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert config["family"] == "llama"
    assert weights["embed_tokens.weight"].shape == (config["vocab_size"], 64)  # gathered, not a ZeRO-3 slice
    assert weights["layers.0.self_attn.k_proj.weight"].shape == (2 * 16, 64)
    assert all(t.numel() > 0 for t in weights.values())
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(
        len(r["memory_mib_per_rank"]) == 2 and r["memory_mib_max"] > 50 for r in rows
    )
    assert list((tmp_path / "out" / "tensorboard").glob("events.out.tfevents.*"))
    report = (tmp_path / "out" / "report" / "training.md").read_text()
    assert "| steps | 8 |" in report and "n/a (no accelerator peak)" in report  # CPU workers
    assert (tmp_path / "out" / "report" / "training.png").stat().st_size > 10_000

    from transformers import AutoModelForCausalLM

    export_hf(tmp_path / "out", tmp_path / "hf")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert sum(p.numel() for p in model.parameters()) == sum(t.numel() for t in weights.values())
