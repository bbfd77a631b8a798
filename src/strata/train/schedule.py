"""The learning-rate schedule: linear warmup to the peak, then cosine decay to a floor."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from strata.spec.train import OptimizerSpec


def lr_ratio(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Share of the peak LR that optimizer step `step` (0-based) uses: 1/W … W/W over the W
    warmup steps, then a cosine from the peak down to `min_ratio` at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_scheduler(spec: OptimizerSpec, total_steps: int) -> Callable[[Optimizer], LambdaLR]:
    """What `deepspeed.initialize(lr_scheduler=...)` takes: DeepSpeed hands it the optimizer,
    steps it after every optimizer step and keeps its position in each checkpoint."""
    ratio = functools.partial(
        lr_ratio, warmup_steps=spec.warmup_steps, total_steps=total_steps, min_ratio=spec.min_lr_ratio
    )
    return lambda optimizer: LambdaLR(optimizer, ratio)
