"""The Llama model cut into DeepSpeed pipeline stages (`parallel.pipeline_stages` > 1).

The layers are the embedding, each decoder layer and the output head, as DeepSpeed
`LayerSpec`s: a rank builds only its own stage's layers. Every layer draws its weights
from its own seed (`llama.block_seed`), so the pipelined model starts from exactly the
weights of the whole `Llama` with the same seed, and its parameter names map back to
`Llama`'s (`stage_names_to_llama`) for `model.pt` and the export.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from strata.spec.models import LlamaConfig
from strata.train.llama import (
    DecoderLayer,
    RMSNorm,
    block_seed,
    init_block,
    lm_loss,
    rotary_tables,
)


class EmbeddingLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, seed: int) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        init_block(self, block_seed(seed, 0))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.embed_tokens(idx)
        return out


class PipelineDecoderLayer(DecoderLayer):
    """A decoder layer that holds its own rotary tables (a stage passes only activations on)."""

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, cfg: LlamaConfig, seed: int, number: int) -> None:
        super().__init__(cfg)
        init_block(self, block_seed(seed, number + 1))
        cos, sin = rotary_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, self.rope_cos, self.rope_sin)


class HeadLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, seed: int) -> None:
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        init_block(self.lm_head, block_seed(seed, cfg.n_layers + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.lm_head(self.norm(x))
        return out


def llama_pipeline(cfg: LlamaConfig, *, stages: int, seed: int, recompute: bool) -> Any:
    """A DeepSpeed `PipelineModule` of `stages` stages with the decoder layers balanced across
    them (the embedding on the first, the head on the last); needs torch.distributed."""
    from deepspeed.pipe import LayerSpec, PipelineModule

    if cfg.tie_embeddings:
        raise ValueError("tied embeddings cannot be split across pipeline stages")
    layers = [
        LayerSpec(EmbeddingLayer, cfg, seed),
        *(LayerSpec(PipelineDecoderLayer, cfg, seed, number) for number in range(cfg.n_layers)),
        LayerSpec(HeadLayer, cfg, seed),
    ]
    module = PipelineModule(
        layers=layers,
        num_stages=stages,
        loss_fn=lm_loss,
        partition_method="type:PipelineDecoderLayer",
        activation_checkpoint_interval=1 if recompute else 0,
        activation_checkpoint_func=functools.partial(checkpoint, use_reentrant=False),
        checkpointable_layers=["PipelineDecoderLayer"],
    )
    # DeepSpeed's gradient norm (for clipping) counts a parameter only on model-parallel
    # rank 0 unless it is marked model-parallel, and under pipelining that rank is the
    # first stage alone: the later stages' gradients would be left out of the norm. Each
    # stage holds distinct parameters, so every one of them counts.
    for parameter in module.parameters():
        parameter.model_parallel = True
    return module


def stage_names_to_llama(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """A stage's `PipelineModule` state dict ("<layer index>.<name>") under `Llama`'s names."""
    renamed = {}
    for key, value in state.items():
        index, _, name = key.partition(".")
        number = int(index)
        renamed[name if number in (0, n_layers + 1) else f"layers.{number - 1}.{name}"] = value
    return renamed
