"""The DeepSpeed engine Strata builds, in this process on one CPU rank (gloo)."""

from __future__ import annotations

import socket

import pytest
import torch

from strata.spec import TrainJob
from strata.spec.models import GPTConfig
from strata.train.step import build_engine, configure_runtime

pytestmark = pytest.mark.ranks  # a one-rank process group and DeepSpeed engines in this process

SHAPE = GPTConfig(vocab_size=128, seq_len=16, n_layers=1, d_model=32, n_heads=2)


def job(**overrides) -> TrainJob:
    base = {"kind": "train", "name": "t", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": 6}
    return TrainJob.model_validate({**base, "workers": {"num_workers": 1}, **overrides})


@pytest.fixture(scope="module", autouse=True)
def one_rank():
    """A process group of this one process, as Ray Train would set it up for a rank."""
    threads = torch.get_num_threads()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.MonkeyPatch.context() as env:
        rank_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "LOCAL_RANK": "0"}
        for key, value in {**rank_env, "WORLD_SIZE": "1"}.items():
            env.setenv(key, value)
        configure_runtime(job())  # DS_ACCELERATOR=cpu before DeepSpeed's first import
        import deepspeed
        import torch.distributed as dist

        deepspeed.init_distributed(dist_backend="gloo")
        yield
        dist.destroy_process_group()
    torch.set_num_threads(threads)


def train(engine, steps: int) -> tuple[list[float], list[float]]:
    """Losses and the LR each step used, on fixed random batches."""
    generator = torch.Generator().manual_seed(1)
    losses, lrs = [], []
    for _ in range(steps):
        x, y = (torch.randint(0, SHAPE.vocab_size, (4, SHAPE.seq_len), generator=generator) for _ in "xy")
        lrs.append(engine.get_lr()[0])
        loss = engine(x, y)
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return losses, lrs


def test_lr_warms_up_linearly_then_decays_to_the_floor() -> None:
    spec = {"lr": 1e-3, "warmup_steps": 2, "min_lr_ratio": 0.1}
    _, lrs = train(build_engine(job(optimizer=spec), SHAPE, world_size=1), 6)
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 7.75e-4, 3.25e-4, 1e-4])


def test_without_warmup_the_first_step_trains_at_the_peak() -> None:
    losses, lrs = train(build_engine(job(optimizer={"lr": 1e-2, "warmup_steps": 0}), SHAPE, 1), 2)
    assert lrs[0] == 1e-2
    assert losses[1] != losses[0]  # the first step changed the weights


def test_one_rank_at_stage_0_skips_the_gradient_reduction_with_the_same_result() -> None:
    spec = job(zero={"stage": 0}, batch={"micro_batch_size": 4, "grad_accum_steps": 2})
    lean = build_engine(spec, SHAPE, world_size=1)
    assert lean.enable_backward_allreduce is False
    reducing = build_engine(spec, SHAPE, world_size=1)
    reducing.enable_backward_allreduce = True
    assert train(lean, 8) == train(reducing, 8)
