"""Model FLOPs follow the PaLM convention; a fresh model predicts uniformly."""

from __future__ import annotations

import math

import torch

from strata.spec.models import GPTConfig
from strata.train.gpt import GPT

CFG = GPTConfig(vocab_size=512, seq_len=32, n_layers=2, d_model=64, n_heads=4)


def test_flops_per_token_by_hand() -> None:
    # blocks: 2 x 12 x 64^2 = 98,304; tied output projection: 512 x 64 = 32,768
    assert CFG.matmul_params() == 98_304 + 32_768
    assert CFG.flops_per_token() == 6 * 131_072 + 12 * 2 * 64 * 32


def test_matmul_params_match_the_module() -> None:
    model = GPT(CFG)
    matmul = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2)
    # the embedding matrices are 2-D too: count the tied token embedding once, not the positions
    assert matmul - CFG.seq_len * CFG.d_model == CFG.matmul_params()


def test_param_count_matches_the_module() -> None:
    assert CFG.param_count() == sum(p.numel() for p in GPT(CFG).parameters())


def test_initial_loss_is_near_uniform() -> None:
    torch.manual_seed(0)
    idx, targets = torch.randint(0, CFG.vocab_size, (2, 4, CFG.seq_len))
    loss = GPT(CFG)(idx, targets)
    assert abs(loss.item() - math.log(CFG.vocab_size)) < 0.2
