"""The torch module of a model shape (strata.spec.models), for the families a job can name."""

from __future__ import annotations

from torch import nn

from strata.spec.models import LlamaConfig, ModelConfig
from strata.train.gpt import GPT
from strata.train.llama import Llama


def build_model(cfg: ModelConfig, *, recompute: bool = False) -> nn.Module:
    """The model; `recompute`: activation checkpointing of every transformer block."""
    return Llama(cfg, recompute=recompute) if isinstance(cfg, LlamaConfig) else GPT(cfg, recompute=recompute)


def param_count(model: nn.Module) -> int:
    """Distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())
