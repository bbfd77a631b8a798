"""The layout proposal behind `strata plan --nodes`: T, P, D, ZeRO stage and micro-batch that fit."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from strata.cli import main
from strata.scaling.layout import propose_layout
from strata.scaling.planner import PlanInputError
from strata.spec.catalog import load_catalog
from strata.spec.memory import estimate_memory
from strata.spec.models import PRESETS, LlamaConfig

P5 = load_catalog().get("p5.48xlarge")


def llama(preset: str, vocab: int = 32_000, seq_len: int = 4096) -> LlamaConfig:
    return LlamaConfig(vocab_size=vocab, seq_len=seq_len, **PRESETS[preset])


def test_llama_70b_on_two_p5_gets_a_layout_that_fits() -> None:
    proposal = propose_layout(llama("llama-70b"), P5, nodes=2)
    lay = proposal.layout
    assert lay.tensor * lay.pipeline * lay.data == 16
    assert (lay.tensor, lay.pipeline, lay.zero_stage) == (8, 2, 1)  # ZeRO-1 at T=8 alone does not fit
    assert lay.recompute and proposal.estimate.fits
    assert estimate_memory(llama("llama-70b"), lay, P5).total_bytes == proposal.estimate.total_bytes
    assert "2 pipeline stages at T=8" in proposal.reasons[0]


def test_a_small_model_stays_data_parallel_with_the_largest_micro_batch() -> None:
    proposal = propose_layout(llama("llama-1b", seq_len=2048), P5, nodes=1)
    lay = proposal.layout
    assert (lay.tensor, lay.pipeline, lay.data, lay.zero_stage, lay.recompute) == (1, 1, 8, 1, False)
    bigger = estimate_memory(
        llama("llama-1b", seq_len=2048), replace(lay, micro_batch=lay.micro_batch + 1), P5
    )
    assert proposal.estimate.fits and (lay.micro_batch == 32 or not bigger.fits)


def test_a_model_that_cannot_fit_asks_for_nodes() -> None:
    """llama-70b's 16-bit weights and gradients alone (4Ψ ≈ 260 GiB) exceed one p4d's 8 × 36 GiB usable."""
    with pytest.raises(PlanInputError, match="add nodes") as info:
        propose_layout(llama("llama-70b"), load_catalog().get("p4d.24xlarge"), nodes=1)
    assert info.value.quantities == ("nodes",)


def test_cli_plan_prints_the_layout_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plan", "--model", "llama-70b", "--tokens", "1.4e12", "--instance", "p5.48xlarge", "--nodes", "2",
          "--vocab-size", "32000", "--seq-len", "4096"])  # fmt: skip
    out = capsys.readouterr().out
    assert "layout: T=8 × P=2 × D=1, ZeRO-1, micro-batch 1, activation checkpointing on" in out
    assert "why: ZeRO-1 does not fit at T=8; 2 pipeline stages at T=8 do" in out
    main(["plan", "--model", "llama-70b", "--tokens", "1.4e12", "--instance", "p5.48xlarge", "--nodes", "2",
          "--vocab-size", "32000", "--seq-len", "4096", "--json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out)["layout"]["pipeline"] == 2
