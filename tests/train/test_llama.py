"""The Llama-style model: shapes, presets, and an export that transformers loads with the same logits."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from strata.errors import JobError
from strata.spec.models import LlamaConfig, build_model_config, describe
from strata.spec.train import ModelSpec
from strata.train.export import export_consolidated, export_hf
from strata.train.llama import Llama
from strata.train.models import param_count
from strata.train.run_files import MODEL_CONFIG

SMALL = LlamaConfig(
    vocab_size=97, seq_len=32, n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, ffn_hidden=160
)


@pytest.mark.parametrize("tied", [False, True])
def test_parameter_count_matches_the_module(tied: bool) -> None:
    cfg = dataclasses.replace(SMALL, tie_embeddings=tied)
    assert param_count(Llama(cfg)) == cfg.param_count()


@pytest.mark.parametrize(
    ("preset", "billions"), [("llama-7b", 6.74), ("llama-13b", 13.0), ("llama-70b", 69.0)]
)
def test_presets_have_the_published_sizes(preset: str, billions: float) -> None:
    spec = ModelSpec(preset=preset, seq_len=4096)
    cfg = build_model_config(spec, vocab_size=32_000)
    assert isinstance(cfg, LlamaConfig)
    assert cfg.param_count() / 1e9 == pytest.approx(billions, rel=0.01)


def test_the_smallest_preset_is_about_10m_parameters_and_presets_fix_the_shape() -> None:
    cfg = build_model_config(ModelSpec(preset="llama-10m"), vocab_size=8192)
    assert 5e6 < cfg.param_count() < 15e6  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="preset 'llama-10m' sets the shape; remove d_model"):
        ModelSpec(preset="llama-10m", d_model=512)
    with pytest.raises(ValueError, match="belong to family 'llama'"):
        ModelSpec(family="gpt", n_kv_heads=2)
    with pytest.raises(ValueError, match=r"n_heads\(4\) % n_kv_heads\(3\) != 0"):
        ModelSpec(family="llama", n_kv_heads=3)


def test_loss_decreases_when_training_a_few_steps() -> None:
    torch.manual_seed(0)
    model = Llama(SMALL)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, SMALL.vocab_size, (4, SMALL.seq_len))
    losses = []
    for _ in range(20):
        loss = model(x[:, :-1], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _write_run(run_dir: Path, cfg: LlamaConfig) -> Llama:
    torch.manual_seed(1)
    model = Llama(cfg).eval()
    run_dir.mkdir()
    torch.save(model.state_dict(), run_dir / "model.pt")
    (run_dir / MODEL_CONFIG).write_text(json.dumps(describe(cfg)))
    return model


@pytest.mark.parametrize("tied", [False, True])
def test_the_hf_export_loads_with_automodel_and_gives_the_same_logits(tmp_path: Path, tied: bool) -> None:
    from transformers import AutoModelForCausalLM

    cfg = dataclasses.replace(SMALL, tie_embeddings=tied)
    model = _write_run(tmp_path / "run", cfg)
    export_hf(tmp_path / "run", tmp_path / "hf")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.seq_len))
    with torch.no_grad():
        ours, theirs = model.logits(idx), loaded(idx).logits
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_the_consolidated_export_holds_config_and_weights(tmp_path: Path) -> None:
    model = _write_run(tmp_path / "run", SMALL)
    path = export_consolidated(tmp_path / "run", tmp_path / "model-full.pt")
    saved = torch.load(path, weights_only=True)
    assert saved["config"]["family"] == "llama" and saved["config"]["n_kv_heads"] == 2
    assert saved["state_dict"].keys() == model.state_dict().keys()


def test_exporting_a_directory_without_a_run_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobError, match=r"model.pt: missing"):
        export_hf(tmp_path, tmp_path / "hf")


@pytest.mark.ranks  # a DeepSpeed engine in a child process
def test_a_llama_job_trains_with_deepspeed_zero(tmp_path: Path) -> None:
    """The job path: spec -> model config -> DeepSpeed ZeRO-2 engine -> steps (one CPU rank)."""
    import subprocess
    import sys

    import numpy as np

    from strata.pipeline.shards import TokenizedDocument, write_shards

    # Each token is followed by the next one: a bigram a model learns in a few steps.
    docs = [(np.arange(start, start + 160) % 63 + 1).astype(np.uint16) for start in range(40)]
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=tmp_path / "shards",
        tokens_per_shard=4096,
        seed=3,
        vocab_size=64,
        eot_id=0,
    )
    job = {
        "kind": "train", "name": "llama-test", "data": {"shards": str(tmp_path / "shards")},
        "model": {"family": "llama", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_kv_heads": 2, "seq_len": 32},
        "optimizer": {"lr": 1e-2, "warmup_steps": 2}, "batch": {"micro_batch_size": 4, "grad_accum_steps": 1},
        "zero": {"stage": 2}, "steps": 30, "workers": {"num_workers": 1}, "output": {"dir": str(tmp_path / "out")},
    }  # fmt: skip
    program = (
        "import json, sys; from strata.spec.train import TrainJob; from strata.train.single import train_single_process; "
        "print(json.dumps(train_single_process(TrainJob.model_validate(json.loads(sys.argv[1])))['losses']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < 0.8 * losses[0], losses
