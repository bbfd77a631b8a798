"""A Llama-style decoder (RMSNorm, SwiGLU, rotary positions, grouped-query attention).

Module names follow Hugging Face's `LlamaForCausalLM` (`embed_tokens`, `layers.N.self_attn.q_proj`,
`mlp.gate_proj`, `input_layernorm`, `norm`, `lm_head`), so a checkpoint exports to
`transformers` by adding the `model.` prefix (strata.train.export). The shape and presets are
strata.spec.models.LlamaConfig and PRESETS.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from strata.spec.models import LlamaConfig
from strata.train.gpt import run_layers


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rotary_tables(cfg: LlamaConfig, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, (seq_len, head_dim), halves repeated as Hugging Face does."""
    inv_freq = 1.0 / cfg.rope_theta ** (
        torch.arange(0, cfg.head_dim, 2, device=device).float() / cfg.head_dim
    )
    angles = torch.outer(torch.arange(cfg.seq_len, device=device).float(), inv_freq)
    both = torch.cat((angles, angles), dim=-1)
    return both.cos(), both.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        cfg = self.cfg
        # Heads by -1: under tensor parallelism (DeepSpeed AutoTP) a rank's projections hold
        # 1/T of the query and key/value heads, and the same code runs on its share.
        q = self.q_proj(x).view(b, s, -1, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, -1, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, -1, cfg.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos[:s], sin[:s]), _rotate(k, cos[:s], sin[:s])
        groups = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        projected: torch.Tensor = self.o_proj(out.transpose(1, 2).reshape(b, s, -1))
        return projected


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ffn_hidden, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return out


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        out: torch.Tensor = x + self.mlp(self.post_attention_layernorm(x))
        return out


class Llama(nn.Module):
    """Returns the mean next-token cross-entropy when given targets (the training interface)."""

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(self, cfg: LlamaConfig, *, recompute: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.recompute = recompute
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        seed = torch.initial_seed()
        for index, block in enumerate((self.embed_tokens, *self.layers, self.lm_head)):
            init_block(block, block_seed(seed, index))
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rotary_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        x = run_layers(
            self.layers, self.embed_tokens(idx), self.rope_cos, self.rope_sin, recompute=self.recompute
        )
        out: torch.Tensor = self.lm_head(self.norm(x))
        return out

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return lm_loss(self.logits(idx), targets)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy, in fp32."""
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


def block_seed(seed: int, index: int) -> int:
    """The seed of block `index` (embedding 0, decoder layers 1..L, output L+1) of a model seeded `seed`."""
    return (seed * 1_000_003 + index) % 2**63


def init_block(block: nn.Module, seed: int) -> None:
    """N(0, 0.02) weights for a block's matrices from its own generator, so a block gets the
    same weights whether the whole model is built or only one pipeline stage's layers."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, 0.02, generator=generator)
