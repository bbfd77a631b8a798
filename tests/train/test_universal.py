"""ZeRO 1-3 state saved by two ranks continues on one through a universal checkpoint, with
the losses the two ranks would have had (gloo, fp32, the same global batch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.spec import TrainJob
from strata.spec.models import GPTConfig
from strata.train.checkpoints import UNIVERSAL, universal_client_state, write_universal
from tests.train.ranks import join_group, run_ranks

pytestmark = pytest.mark.ranks  # gloo rank processes (tests/train/ranks.py)

CFG = GPTConfig(vocab_size=128, seq_len=16, n_layers=2, d_model=32, n_heads=2)
STEPS, MICRO, GLOBAL, TAG = 3, 2, 4, "state"


def _rank(rank: int, world: int, port: int, stage: int, directory: str) -> list[float]:
    """Two ranks train STEPS steps, save their shards under `directory` and train STEPS more;
    one rank loads the universal copy and trains those STEPS. The mean loss of each step."""
    join_group(rank, world, port)
    resume = world == 1
    job = TrainJob.model_validate({
        "kind": "train", "name": "u", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": 10,
        "zero": {"stage": stage}, "optimizer": {"lr": 1e-2, "warmup_steps": 0},
        "batch": {"micro_batch_size": MICRO, "global_batch_size": GLOBAL}, "workers": {"num_workers": world},
    })  # fmt: skip
    from strata.train.step import build_engine, configure_runtime

    configure_runtime(job)
    import deepspeed
    import torch
    import torch.distributed as dist

    deepspeed.init_distributed(dist_backend="gloo")
    engine = build_engine(job, CFG, world, load_universal=resume)
    micro_batches = []  # the global batch, the same every step, split by global micro-batch number
    for number in range(GLOBAL // MICRO):
        generator = torch.Generator().manual_seed(number)
        micro_batches.append(
            [torch.randint(0, CFG.vocab_size, (MICRO, CFG.seq_len), generator=generator) for _ in "xy"]
        )

    def step() -> float:
        total = torch.zeros(())
        accum = job.batch.grad_accum_steps
        for micro in range(accum):
            x, y = micro_batches[rank * accum + micro]
            loss = engine(x, y)
            engine.backward(loss)
            engine.step()
            total += loss.detach()
        dist.all_reduce(total)
        return total.item() / (world * accum)

    if resume:
        engine.load_checkpoint(str(Path(directory) / UNIVERSAL), tag=TAG)
    else:
        for _ in range(STEPS):
            step()
        engine.save_checkpoint(directory, tag=TAG, client_state={"step": STEPS, **universal_client_state()})
    losses = [step() for _ in range(STEPS)]
    dist.destroy_process_group()
    return losses


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_state_of_two_ranks_continues_on_one(tmp_path: Path, stage: int) -> None:
    two = run_ranks(_rank, 2, stage, str(tmp_path))
    assert write_universal(tmp_path, TAG) == tmp_path / UNIVERSAL
    assert not (tmp_path / f"{UNIVERSAL}.partial").exists()
    one = run_ranks(_rank, 1, stage, str(tmp_path))
    assert one[0] == pytest.approx(two[0], abs=1e-5)
