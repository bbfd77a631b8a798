"""Memory per accelerator (strata.spec.memory): ZeRO's model states, Korthikanti's activations,
and `strata validate` refusing a job that cannot fit with the setting to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.cli import main
from strata.errors import SpecError
from strata.spec import TrainJob
from strata.spec.catalog import load_catalog
from strata.spec.memory import GIB, Layout, check_fits, estimate_memory, job_layout
from strata.spec.models import PRESETS, LlamaConfig

H100 = load_catalog().get("p5.48xlarge")
LLAMA_7B = LlamaConfig(vocab_size=32_000, seq_len=2048, **PRESETS["llama-7b"])


def job(**overrides: object) -> TrainJob:
    data: dict[str, object] = {
        "kind": "train", "name": "j", "data": {"shards": "/nonexistent"}, "output": {"dir": "o"}, "steps": 1,
        "model": {"preset": "llama-7b", "seq_len": 2048}, "zero": {"stage": 0},
        "batch": {"micro_batch_size": 1}, "workers": {"num_workers": 1, "use_gpu": True},
    }  # fmt: skip
    data.update(overrides)
    return TrainJob.model_validate(data)


def test_llama_7b_zero_1_on_8_h100s_by_hand() -> None:
    """Every line worked out from the formulas: Ψ = 32 layers × (4·4096² + 3·4096·11008)
    + 2 × 32000·4096 (embedding, output) + 65·4096 (norms) = 6,738,415,616 parameters."""
    psi = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 2 * 32_000 * 4096 + 65 * 4096
    assert LLAMA_7B.param_count() == psi == 6_738_415_616
    layout = Layout(data=8, zero_stage=1, micro_batch=2, precision="bf16")
    lines = {line.item: line.bytes for line in estimate_memory(LLAMA_7B, layout, H100).lines}
    assert lines["weights"] == 2 * psi  # 2Ψ, bf16
    assert lines["gradients"] == 2 * psi  # 2Ψ, bf16, whole at ZeRO-1
    assert lines["optimizer states"] == 12 * psi / 8  # KΨ/D, K = 12, split over 8 ranks
    assert lines["activations, no recompute"] == 32 * 2048 * 2 * 4096 * 34  # L·s·b·h·34
    assert lines["activations, recompute"] == 32 * 2 * 2048 * 2 * 4096 + 2048 * 2 * 4096 * 34
    assert lines["logits"] == 2048 * 2 * 32_000 * 4  # s·b·V·4
    total = estimate_memory(LLAMA_7B, layout, H100).total_bytes
    assert total == 4 * psi + 1.5 * psi + 18_253_611_008 + 524_288_000
    assert total / GIB == pytest.approx(52.0, abs=0.05) and total < 0.9 * 80 * GIB


def test_stages_split_the_states_and_tensor_parallelism_the_blocks() -> None:
    base = estimate_memory(LLAMA_7B, Layout(), H100)
    split = estimate_memory(LLAMA_7B, Layout(tensor=2, pipeline=2, zero_stage=3, data=2), H100)
    by_item = {a.item: (a.bytes, b.bytes) for a, b in zip(base.lines, split.lines, strict=True)}
    assert by_item["weights"][1] == by_item["weights"][0] / 8  # /(T·P·D) at ZeRO-3
    assert (
        by_item["activations, no recompute"][1]
        == by_item["activations, no recompute"][0] * (10 + 12) / 34 / 2
    )
    assert by_item["logits"][1] == by_item["logits"][0]  # not split by T


def test_fp32_and_autocast_keep_four_byte_weights_and_eight_byte_adam_states() -> None:
    lines = estimate_memory(
        LLAMA_7B, Layout(precision="autocast", offload_optimizer=True, zero_stage=1), H100
    ).lines
    by_item = {line.item: line.bytes for line in lines}
    psi = LLAMA_7B.param_count()
    assert (by_item["weights"], by_item["gradients"], by_item["optimizer states"]) == (4 * psi, 4 * psi, 0)
    assert job_layout(job(workers={"num_workers": 1, "use_gpu": False})).precision == "fp32"


def test_llama_7b_on_one_h100_at_zero_0_is_refused_naming_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        check_fits(LLAMA_7B, job(), H100, "big.yaml")
    message = str(info.value)
    assert message.startswith("big.yaml: the job needs 109.2 GiB per accelerator")
    assert "optimizer states 75.3" in message and "72.0 GiB usable of 80" in message
    assert "change one of: zero.offload_optimizer: true with zero.stage: 1" in message


def test_a_large_micro_batch_is_told_the_largest_that_fits_and_recompute() -> None:
    big_batch = job(
        zero={"stage": 1}, batch={"micro_batch_size": 16}, workers={"num_workers": 8, "use_gpu": True}
    )
    with pytest.raises(SpecError) as info:
        check_fits(LLAMA_7B, big_batch, H100, "j.yaml")
    assert "batch.micro_batch_size: 4; activation_checkpointing: true" in str(info.value)


def test_cli_validate_show_prints_the_memory_and_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(
        "kind: train\nname: j\ndata: {shards: /nonexistent}\nmodel: {preset: llama-7b, seq_len: 2048}\n"
        "zero: {stage: 1}\nbatch: {micro_batch_size: 2}\nsteps: 1\nworkers: {num_workers: 8, use_gpu: true}\n"
        "output: {dir: o}\n"
    )
    main(["validate", str(path), "--show", "--stack", "aws-h100"])
    out = capsys.readouterr().out
    assert "memory per accelerator on p5.48xlarge (vocabulary 32000, assumed" in out
    assert "optimizer states" in out and "[ZeRO (Rajbhandari et al. 2020) §3.1]" in out
    assert "52.00 GiB" in out and ": fits" in out
    path.write_text(
        path.read_text().replace("num_workers: 8", "num_workers: 1").replace("stage: 1", "stage: 0")
    )
    with pytest.raises(SystemExit):
        main(["validate", str(path), "--instance-type", "p5.48xlarge"])
    assert "zero.offload_optimizer: true" in capsys.readouterr().err
