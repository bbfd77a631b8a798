"""ZeRO on two CPU ranks (gloo, fp32): every stage trains like stage 0, and each rank keeps
only its share of the optimizer state (and at stage 3 of the parameters)."""

from __future__ import annotations

import pytest

from strata.spec import TrainJob
from strata.spec.models import GPTConfig
from tests.train.ranks import join_group, run_ranks

pytestmark = pytest.mark.ranks  # gloo rank processes (tests/train/ranks.py)

CFG = GPTConfig(vocab_size=128, seq_len=16, n_layers=2, d_model=32, n_heads=2)
WORLD, STEPS = 2, 6


def _rank(rank: int, world: int, port: int, stage: int, offload: bool) -> tuple[list[float], int, int]:
    join_group(rank, world, port)
    job = TrainJob.model_validate({
        "kind": "train", "name": "z", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": STEPS,
        "zero": {"stage": stage, "offload_optimizer": offload}, "optimizer": {"lr": 1e-2, "warmup_steps": 0},
        "batch": {"micro_batch_size": 2}, "workers": {"num_workers": world},
    })  # fmt: skip
    from strata.train.step import build_engine, configure_runtime

    configure_runtime(job)
    import deepspeed
    import torch
    import torch.distributed as dist

    deepspeed.init_distributed(dist_backend="gloo")
    engine = build_engine(job, CFG, world)
    generator = torch.Generator().manual_seed(rank)  # this rank's batch, the same every step
    x, y = (torch.randint(0, CFG.vocab_size, (2, CFG.seq_len), generator=generator) for _ in "xy")
    losses = []
    for _ in range(STEPS):
        loss = engine(x, y)
        engine.backward(loss)
        engine.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
    inner = getattr(engine.optimizer, "optimizer", engine.optimizer)  # ZeRO wraps torch's AdamW
    adam = sum(state["exp_avg"].numel() for state in inner.state.values())
    params = sum(getattr(p, "ds_tensor", p).numel() for p in engine.module.parameters())
    dist.destroy_process_group()
    return losses, adam, params


def train(stage: int, *, offload: bool = False) -> list[tuple[list[float], int, int]]:
    """Losses of both ranks and, per rank, Adam state and parameter elements held."""
    return run_ranks(_rank, WORLD, stage, offload)


@pytest.fixture(scope="module")
def stage_0() -> list[tuple[list[float], int, int]]:
    return train(0)


def test_stage_0_keeps_everything_on_every_rank(stage_0) -> None:
    total = CFG.param_count()
    assert [(adam, params) for _, adam, params in stage_0] == [(total, total)] * WORLD


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_trains_like_stage_0_on_half_the_state(stage: int, stage_0) -> None:
    ranks = train(stage)
    assert ranks[0][0] == pytest.approx(stage_0[0][0], abs=1e-5)
    assert ranks[0][0][-1] < ranks[0][0][0] - 0.1  # it learned
    total = CFG.param_count()
    for _, adam, params in ranks:
        assert total / WORLD <= adam <= total / WORLD + 64  # a shard, padded to an alignment
        if stage == 3:
            assert total / WORLD <= params <= total / WORLD + 64
        else:
            assert params == total


@pytest.mark.parametrize("stage", [2, 3])
def test_an_offloaded_optimizer_trains_like_stage_0(stage: int, stage_0) -> None:
    ranks = train(stage, offload=True)
    assert ranks[0][0] == pytest.approx(stage_0[0][0], abs=1e-5)
    for _, adam, _ in ranks:
        assert adam <= CFG.param_count() / WORLD + 64
