"""Model shapes without torch: FLOPs per token and MFU in the PaLM convention, and the presets."""

from __future__ import annotations

import pytest

from strata.spec.models import PRESETS, GPTConfig, LlamaConfig, build_model_config, mfu
from strata.spec.train import ModelSpec


def test_mfu_reproduces_the_recorded_gpu_benchmark() -> None:
    """docs/benchmarks.md, 2026-11-28: the ~1.3B GPT at 61,842 tokens/s on an H200 is 561.1 TFLOP/s, 56.7%."""
    gpt = GPTConfig(vocab_size=50_304, seq_len=2048, n_layers=24, d_model=2048, n_heads=16)
    assert gpt.flops_per_token() == 6 * gpt.matmul_params() + 12 * 24 * 2048 * 2048
    assert gpt.flops_per_token() * 61_842 / 1e12 == pytest.approx(561.1, abs=0.05)
    assert mfu(gpt.flops_per_token(), 61_842, 989e12) == pytest.approx(0.567, abs=5e-4)


def test_a_preset_builds_its_llama_shape() -> None:
    cfg = build_model_config(ModelSpec(preset="llama-1b", seq_len=2048), 128_256)
    assert isinstance(cfg, LlamaConfig)
    assert (cfg.n_layers, cfg.d_model, cfg.n_kv_heads, cfg.ffn_hidden) == tuple(
        PRESETS["llama-1b"][k] for k in ("n_layers", "d_model", "n_kv_heads", "ffn_hidden")
    )
    assert cfg.flops_per_token() == 6 * cfg.matmul_params() + 12 * 16 * 2048 * 2048
