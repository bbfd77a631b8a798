"""The Llama model in two DeepSpeed pipeline stages on two CPU ranks (gloo, ZeRO-0, gradient
clipping on): each rank holds its stage's layers only, and training gives the whole model's
losses (DeepSpeed alone would clip with a norm of the first stage's gradients)."""

from __future__ import annotations

import pytest

from strata.spec import TrainJob
from strata.spec.models import LlamaConfig
from strata.train.llama import Llama
from strata.train.models import param_count
from strata.train.pipeline_stages import stage_names_to_llama
from tests.train.ranks import join_group, run_ranks

pytestmark = pytest.mark.ranks  # gloo rank processes (tests/train/ranks.py)

CFG = LlamaConfig(vocab_size=64, seq_len=16, n_layers=4, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=64)
STEPS, MICRO, GLOBAL = 4, 2, 4


def _rank(rank: int, world: int, port: int, recompute: bool) -> tuple[list[float], set[str], int]:
    """Train STEPS steps on `world` pipeline stages (one: the whole model, no pipeline)."""
    join_group(rank, world, port)
    job = TrainJob.model_validate({
        "kind": "train", "name": "p", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": 10,
        "model": {"family": "llama", "n_layers": CFG.n_layers}, "zero": {"stage": 0},
        "parallel": {"pipeline_stages": world}, "optimizer": {"lr": 1e-2, "warmup_steps": 0, "grad_clip": 0.5},
        "batch": {"micro_batch_size": MICRO, "global_batch_size": GLOBAL}, "workers": {"num_workers": world},
        "activation_checkpointing": recompute,
    })  # fmt: skip
    from strata.train.step import build_engine, configure_runtime

    configure_runtime(job)
    import deepspeed
    import torch

    deepspeed.init_distributed(dist_backend="gloo")
    engine = build_engine(job, CFG, world)
    micro_batches = []
    for number in range(GLOBAL // MICRO):
        tokens = torch.randint(
            0, CFG.vocab_size, (MICRO, CFG.seq_len), generator=torch.Generator().manual_seed(number)
        )
        micro_batches.append((tokens, tokens.roll(-1, dims=1)))
    losses = []
    for _ in range(STEPS):
        if world > 1:
            losses.append(engine.train_batch(data_iter=iter(micro_batches)).item())
        else:
            total = 0.0
            for x, y in micro_batches:
                loss = engine(x, y)
                engine.backward(loss)
                engine.step()
                total += loss.item()
            losses.append(total / len(micro_batches))
    state = engine.module.state_dict()
    names = set(stage_names_to_llama(state, CFG.n_layers) if world > 1 else state)
    torch.distributed.destroy_process_group()
    return losses, names, sum(p.numel() for p in engine.module.parameters())


@pytest.mark.parametrize("recompute", [False, True], ids=["keep-activations", "recompute"])
def test_two_stages_hold_half_the_layers_each_and_train_like_the_whole_model(recompute: bool) -> None:
    ((whole, whole_names, whole_count),) = run_ranks(_rank, 1, False)
    first, second = run_ranks(_rank, 2, recompute)
    assert first[0] == pytest.approx(whole, abs=1e-5) and second[0] == first[0]
    assert whole_count == param_count(Llama(CFG)) == first[2] + second[2]
    assert first[1] | second[1] == whole_names and not first[1] & second[1]
    assert "embed_tokens.weight" in first[1] and "lm_head.weight" in second[1]
