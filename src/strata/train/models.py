"""The model families a training job can name, built from its `model` section."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from strata.spec.train import ModelSpec
from strata.train.llama import Llama, LlamaConfig
from strata.train.model import GPT, GPTConfig

ModelConfig = GPTConfig | LlamaConfig
MODEL_CONFIG = "model-config.json"  # written next to model.pt by the training loop


def build_model_config(spec: ModelSpec, vocab_size: int) -> ModelConfig:
    """The shape of the job's model for a tokenizer of `vocab_size` tokens."""
    common = {"vocab_size": vocab_size, "seq_len": spec.seq_len, "n_layers": spec.n_layers,
              "d_model": spec.d_model, "n_heads": spec.n_heads}  # fmt: skip
    if spec.family == "gpt":
        return GPTConfig(**common)
    return LlamaConfig(
        **common, n_kv_heads=spec.kv_heads, ffn_hidden=spec.ffn_size, rope_theta=spec.rope_theta,
        tie_embeddings=spec.tie_embeddings,
    )  # fmt: skip


def build_model(cfg: ModelConfig, *, recompute: bool = False) -> nn.Module:
    """The model; `recompute`: activation checkpointing of every transformer block."""
    return Llama(cfg, recompute=recompute) if isinstance(cfg, LlamaConfig) else GPT(cfg, recompute=recompute)


def describe(cfg: ModelConfig) -> dict[str, Any]:
    """The config as JSON-ready values, with its family (written next to trained weights)."""
    return {"family": "llama" if isinstance(cfg, LlamaConfig) else "gpt", **dataclasses.asdict(cfg)}


def config_from_description(values: dict[str, Any]) -> ModelConfig:
    fields = {k: v for k, v in values.items() if k != "family"}
    return LlamaConfig(**fields) if values.get("family") == "llama" else GPTConfig(**fields)


def param_count(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
