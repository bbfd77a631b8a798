"""Activation checkpointing recomputes each block in the backward pass: the same loss and
gradients as keeping every activation, for both model families."""

from __future__ import annotations

import pytest
import torch

from strata.spec.models import GPTConfig, LlamaConfig, ModelConfig
from strata.train.models import build_model

CONFIGS = [
    GPTConfig(vocab_size=64, seq_len=16, n_layers=3, d_model=32, n_heads=2),
    LlamaConfig(vocab_size=64, seq_len=16, n_layers=3, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=64),
]


def _loss_and_grads(cfg: ModelConfig, recompute: bool) -> tuple[float, dict[str, torch.Tensor], int]:
    torch.manual_seed(0)
    model = build_model(cfg, recompute=recompute)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.seq_len), generator=torch.Generator().manual_seed(1))
    saved = 0

    def count(_: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += 1
        return _

    with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
        loss = model(idx, idx.roll(-1, dims=1))
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, saved


@pytest.mark.parametrize("cfg", CONFIGS, ids=["gpt", "llama"])
def test_recomputed_blocks_give_the_same_loss_and_gradients_keeping_fewer_tensors(cfg: ModelConfig) -> None:
    loss, grads, kept = _loss_and_grads(cfg, recompute=False)
    loss_r, grads_r, kept_r = _loss_and_grads(cfg, recompute=True)
    assert loss_r == pytest.approx(loss, abs=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_r[name], grad, rtol=1e-5, atol=1e-6, msg=name)
    assert kept_r < kept / 2  # only each block's input is kept, not its internals
