"""A concrete model of the training family (strata.train.gpt.GPT, shaped by strata.spec.models.GPTConfig) for a parameter count."""

from __future__ import annotations

import math

from strata.spec.models import GPTConfig

HEAD_DIM = 128
MIN_ASPECT, MAX_ASPECT, TARGET_ASPECT = 32, 128, 64  # d_model / n_layers


def shape_for_params(params: float, vocab_size: int = 50_304, seq_len: int = 2048) -> GPTConfig:
    """The shape whose matmul parameter count is closest to `params`.

    d_model is a multiple of 128 (heads of 128), d_model/n_layers stays within
    32..128 (GPT-3's models span 64..128), and among equally close shapes the one
    nearest an aspect ratio of 64 wins. The family spans 1 layer x 128 to 256 layers x
    32768 (about 3.3e12 matmul parameters); beyond it, the largest shape is returned.
    """
    best: tuple[float, GPTConfig] | None = None
    for n_layers in range(1, 257):
        # Capped at the widest allowed d_model, so the largest shape stands for any larger N.
        ideal = min(math.sqrt(max(params, 1.0) / (12 * n_layers)), MAX_ASPECT * n_layers)
        for d_model in {
            max(HEAD_DIM, math.floor(ideal / HEAD_DIM) * HEAD_DIM),
            math.ceil(ideal / HEAD_DIM) * HEAD_DIM,
        }:
            aspect = d_model / n_layers
            if not MIN_ASPECT <= aspect <= MAX_ASPECT and d_model > HEAD_DIM:
                continue
            cfg = GPTConfig(
                vocab_size=vocab_size,
                seq_len=seq_len,
                n_layers=n_layers,
                d_model=d_model,
                n_heads=d_model // HEAD_DIM,
            )
            score = abs(math.log(cfg.matmul_params() / params)) + 0.01 * abs(math.log(aspect / TARGET_ASPECT))
            if best is None or score < best[0]:
                best = (score, cfg)
    assert best is not None  # n_layers=1 with d_model=128 always qualifies
    return best[1]
