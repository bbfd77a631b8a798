"""Model shapes without torch: the GPT and Llama configs, the Llama presets, parameter counts,
training FLOPs per token and MFU. The torch modules (strata.train.gpt, strata.train.llama)
build from these; the spec, the planner and `strata validate` read them without loading torch.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strata.spec.train import ModelSpec


def flops_per_token(*, matmul_params: int, n_layers: int, d_model: int, seq_len: int) -> int:
    """Training FLOPs per token, PaLM convention (Chowdhery et al. 2022, appendix B):
    6·N_matmul for the forward and backward matmuls plus 12·L·d·S for attention scores;
    no recompute counted, so MFU does not credit activation checkpointing."""
    return 6 * matmul_params + 12 * n_layers * d_model * seq_len


def mfu(flops_per_token: int, tokens_per_second: float, peak_flops_per_second: float) -> float:
    """Model FLOPs utilization: model FLOP/s achieved over the accelerators' peak FLOP/s
    (`peak_flops_per_second` of every accelerator that produced `tokens_per_second`)."""
    return flops_per_token * tokens_per_second / peak_flops_per_second


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformerShape(ABC):
    """What every family's shape has: its sizes and its training FLOPs per token."""

    vocab_size: int
    seq_len: int
    n_layers: int
    d_model: int
    n_heads: int

    @abstractmethod
    def matmul_params(self) -> int:
        """Parameters in matrix multiplies (the N of `flops_per_token`)."""

    def flops_per_token(self) -> int:
        """Training FLOPs per token (`flops_per_token`, PaLM convention)."""
        return flops_per_token(
            matmul_params=self.matmul_params(),
            n_layers=self.n_layers,
            d_model=self.d_model,
            seq_len=self.seq_len,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GPTConfig(TransformerShape):
    """Shape of the GPT family (strata.train.gpt): LayerNorm, GELU MLP of 4·d, learned
    positions, embeddings tied to the output projection."""

    def matmul_params(self) -> int:
        """Parameters in matrix multiplies: blocks plus the (tied) output projection."""
        per_block = 12 * self.d_model * self.d_model
        return self.n_layers * per_block + self.vocab_size * self.d_model

    def param_count(self) -> int:
        """Every parameter: matmuls, learned positions and the LayerNorms' weights and biases."""
        norms = (4 * self.n_layers + 2) * self.d_model
        return self.matmul_params() + self.seq_len * self.d_model + norms


@dataclass(frozen=True, slots=True, kw_only=True)
class LlamaConfig(TransformerShape):
    """Shape of the Llama family (strata.train.llama); `n_kv_heads` < `n_heads` is grouped-query attention."""

    n_kv_heads: int
    ffn_hidden: int
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def matmul_params(self) -> int:
        """Parameters in matrix multiplies: attention, SwiGLU and the output projection."""
        attention = self.d_model * self.head_dim * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = 3 * self.d_model * self.ffn_hidden
        return self.n_layers * (attention + mlp) + self.vocab_size * self.d_model

    def param_count(self) -> int:
        """Every parameter: matmuls, the input embedding (unless tied) and the norms."""
        embedding = 0 if self.tie_embeddings else self.vocab_size * self.d_model
        norms = (2 * self.n_layers + 1) * self.d_model
        return self.matmul_params() + embedding + norms


ModelConfig = GPTConfig | LlamaConfig

# Shapes of the Llama family, from ~10M (CPU tests) to 70B (Llama 2/3 shapes for 7B, 13B, 70B).
PRESETS: dict[str, dict[str, int]] = {
    "llama-10m": {"n_layers": 4, "d_model": 256, "n_heads": 4, "n_kv_heads": 4, "ffn_hidden": 688},
    "llama-125m": {"n_layers": 12, "d_model": 768, "n_heads": 12, "n_kv_heads": 12, "ffn_hidden": 2048},
    "llama-350m": {"n_layers": 24, "d_model": 1024, "n_heads": 16, "n_kv_heads": 16, "ffn_hidden": 2816},
    "llama-1b": {"n_layers": 16, "d_model": 2048, "n_heads": 32, "n_kv_heads": 8, "ffn_hidden": 8192},
    "llama-7b": {"n_layers": 32, "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "ffn_hidden": 11008},
    "llama-13b": {"n_layers": 40, "d_model": 5120, "n_heads": 40, "n_kv_heads": 40, "ffn_hidden": 13824},
    "llama-70b": {"n_layers": 80, "d_model": 8192, "n_heads": 64, "n_kv_heads": 8, "ffn_hidden": 28672},
}


def build_model_config(spec: ModelSpec, vocab_size: int) -> ModelConfig:
    """The shape of a job's model for a tokenizer of `vocab_size` tokens."""
    common = {"vocab_size": vocab_size, "seq_len": spec.seq_len, "n_layers": spec.n_layers,
              "d_model": spec.d_model, "n_heads": spec.n_heads}  # fmt: skip
    if spec.family == "gpt":
        return GPTConfig(**common)
    return LlamaConfig(
        **common, n_kv_heads=spec.kv_heads, ffn_hidden=spec.ffn_size, rope_theta=spec.rope_theta,
        tie_embeddings=spec.tie_embeddings,
    )  # fmt: skip


def describe(cfg: ModelConfig) -> dict[str, Any]:
    """The config as JSON-ready values, with its family (written next to trained weights)."""
    return {"family": "llama" if isinstance(cfg, LlamaConfig) else "gpt", **dataclasses.asdict(cfg)}


def config_from_description(values: dict[str, Any]) -> ModelConfig:
    """The config `describe` wrote."""
    fields = {k: v for k, v in values.items() if k != "family"}
    return LlamaConfig(**fields) if values.get("family") == "llama" else GPTConfig(**fields)
