"""The Llama decoder of strata.train.llama in plain JAX, on a flat dict of parameters.

Parameters carry the torch model's state-dict names and shapes (`embed_tokens.weight`
(V, d), `layers.N.self_attn.q_proj.weight` (out, in) as nn.Linear stores it, ...), so a
torch state dict loads as it is and the export of the torch path applies. The arithmetic
follows the torch module: RMSNorm in fp32, rotary halves repeated as Hugging Face does,
causal attention with key/value heads shared by consecutive query heads
(repeat_interleave), SwiGLU, mean next-token cross-entropy in fp32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from strata.spec.models import LlamaConfig

Params = dict[str, jax.Array]


def param_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """Name → shape of every parameter, in the torch state dict's order (no `lm_head.weight`
    when the embeddings are tied: the output projection is `embed_tokens.weight`)."""
    d, hd, f = cfg.d_model, cfg.head_dim, cfg.ffn_hidden
    shapes: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (cfg.vocab_size, d)}
    for i in range(cfg.n_layers):
        layer = f"layers.{i}"
        shapes |= {
            f"{layer}.input_layernorm.weight": (d,),
            f"{layer}.self_attn.q_proj.weight": (cfg.n_heads * hd, d),
            f"{layer}.self_attn.k_proj.weight": (cfg.n_kv_heads * hd, d),
            f"{layer}.self_attn.v_proj.weight": (cfg.n_kv_heads * hd, d),
            f"{layer}.self_attn.o_proj.weight": (d, cfg.n_heads * hd),
            f"{layer}.post_attention_layernorm.weight": (d,),
            f"{layer}.mlp.gate_proj.weight": (f, d),
            f"{layer}.mlp.up_proj.weight": (f, d),
            f"{layer}.mlp.down_proj.weight": (d, f),
        }
    shapes["norm.weight"] = (d,)
    if not cfg.tie_embeddings:
        shapes["lm_head.weight"] = (cfg.vocab_size, d)
    return shapes


def init_params(cfg: LlamaConfig, seed: int) -> dict[str, np.ndarray[Any, Any]]:
    """N(0, 0.02) matrices and unit norm weights, as the torch model initialises them (from
    JAX's generator, so not the same numbers: load a torch state dict for those)."""
    key = jax.random.key(seed)
    params: dict[str, np.ndarray[Any, Any]] = {}
    for index, (name, shape) in enumerate(param_shapes(cfg).items()):
        if name.endswith("norm.weight"):
            params[name] = np.ones(shape, np.float32)
        else:
            params[name] = np.asarray(0.02 * jax.random.normal(jax.random.fold_in(key, index), shape))
    return params


def check_params(cfg: LlamaConfig, params: dict[str, Any]) -> None:
    """Raise ValueError naming every missing, extra or misshapen parameter."""
    shapes = param_shapes(cfg)
    wrong = [
        f"{n}: {tuple(params[n].shape)} != {s}"
        for n, s in shapes.items()
        if n in params and tuple(params[n].shape) != s
    ]
    missing, extra = sorted(set(shapes) - set(params)), sorted(set(params) - set(shapes))
    if wrong or missing or extra:
        raise ValueError(f"parameters do not fit the model: shapes {wrong}, missing {missing}, extra {extra}")


def rotary_tables(cfg: LlamaConfig) -> tuple[jax.Array, jax.Array]:
    """cos and sin of the rotary angles, (seq_len, head_dim), halves repeated."""
    inv_freq = 1.0 / cfg.rope_theta ** (jnp.arange(0, cfg.head_dim, 2, dtype=jnp.float32) / cfg.head_dim)
    angles = jnp.outer(jnp.arange(cfg.seq_len, dtype=jnp.float32), inv_freq)
    both = jnp.concatenate((angles, angles), axis=-1)
    return jnp.cos(both), jnp.sin(both)


def _rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    xf = x.astype(jnp.float32)
    normed = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
    return weight.astype(x.dtype) * normed.astype(x.dtype)


def _rotate(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x: (batch, seq, heads, head_dim); cos, sin: (seq, head_dim)."""
    half = x.shape[-1] // 2
    rotated = jnp.concatenate((-x[..., half:], x[..., :half]), axis=-1)
    return (x * cos[:, None, :] + rotated * sin[:, None, :]).astype(x.dtype)


def _layer(cfg: LlamaConfig, p: Params, x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """One decoder layer on (batch, seq, d_model); `p` holds its weights without the prefix."""
    b, s, _ = x.shape
    h = _rms_norm(x, p["input_layernorm.weight"], cfg.norm_eps)
    q = (h @ p["self_attn.q_proj.weight"].T).reshape(b, s, cfg.n_heads, cfg.head_dim)
    k = (h @ p["self_attn.k_proj.weight"].T).reshape(b, s, cfg.n_kv_heads, cfg.head_dim)
    v = (h @ p["self_attn.v_proj.weight"].T).reshape(b, s, cfg.n_kv_heads, cfg.head_dim)
    q, k = _rotate(q, cos[:s], sin[:s]), _rotate(k, cos[:s], sin[:s])
    # Query head n reads key/value head n // (n_heads / n_kv_heads), as repeat_interleave does.
    attended = jax.nn.dot_product_attention(q, k, v, is_causal=True)
    x = x + attended.reshape(b, s, -1) @ p["self_attn.o_proj.weight"].T
    h = _rms_norm(x, p["post_attention_layernorm.weight"], cfg.norm_eps)
    mlp = jax.nn.silu(h @ p["mlp.gate_proj.weight"].T) * (h @ p["mlp.up_proj.weight"].T)
    return x + mlp @ p["mlp.down_proj.weight"].T


def logits(
    cfg: LlamaConfig,
    params: Params,
    idx: jax.Array,
    *,
    compute_dtype: Any = jnp.float32,
    recompute: bool = False,
) -> jax.Array:
    """Logits (batch, seq, vocab) for token ids (batch, seq); weights are cast to
    `compute_dtype` (bf16 on TPU; the fp32 originals stay the optimizer's); `recompute`
    keeps only each layer's input for the backward pass (jax.checkpoint)."""
    cast = {name: value.astype(compute_dtype) for name, value in params.items()}
    cos, sin = rotary_tables(cfg)
    layer = jax.checkpoint(_layer, static_argnums=0) if recompute else _layer
    x = cast["embed_tokens.weight"][idx]
    for i in range(cfg.n_layers):
        prefix = f"layers.{i}."
        x = layer(cfg, {n[len(prefix) :]: w for n, w in cast.items() if n.startswith(prefix)}, x, cos, sin)
    head = cast["embed_tokens.weight" if cfg.tie_embeddings else "lm_head.weight"]
    return _rms_norm(x, cast["norm.weight"], cfg.norm_eps) @ head.T


def lm_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy over every position, in fp32 (torch's F.cross_entropy)."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, targets[..., None], axis=-1))
