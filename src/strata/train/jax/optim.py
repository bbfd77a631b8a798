"""AdamW, gradient clipping and the learning-rate schedule of the torch path, in optax.

The same update as the DeepSpeed job (strata.train.deepspeed_config): torch's AdamW with
the job's betas and weight decay on every parameter, eps 1e-8 (torch's default, which
the DeepSpeed config leaves), decoupled decay p ← p − lr·wd·p (Loshchilov & Hutter 2019),
after clipping the global gradient norm to `grad_clip`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from strata.spec.train import OptimizerSpec

ADAM_EPS = 1e-8  # torch.optim.AdamW's default


def lr_schedule(spec: OptimizerSpec, total_steps: int) -> optax.Schedule:
    """Peak × strata.train.schedule.lr_ratio(count): linear warmup 1/W … W/W over W steps, then
    a cosine to `min_lr_ratio` at the last step. `count` is the 0-based optimizer step, as
    optax passes it and as torch's LambdaLR steps."""
    warmup, floor = spec.warmup_steps, spec.min_lr_ratio
    decay_steps = max(1, total_steps - warmup - 1)

    def schedule(count: jax.Array | int) -> jax.Array:
        step = jnp.asarray(count, jnp.float32)
        progress = jnp.minimum(1.0, (step - warmup) / decay_steps)
        cosine = floor + (1.0 - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        ratio = jnp.where(step < warmup, (step + 1) / max(1, warmup), cosine)
        return spec.lr * ratio

    return schedule


def build_optimizer(spec: OptimizerSpec, total_steps: int) -> optax.GradientTransformation:
    """Clip (when grad_clip > 0), then AdamW with the schedule."""
    adamw = optax.adamw(
        lr_schedule(spec, total_steps),
        b1=spec.betas[0],
        b2=spec.betas[1],
        eps=ADAM_EPS,
        weight_decay=spec.weight_decay,
    )
    return optax.chain(optax.clip_by_global_norm(spec.grad_clip), adamw) if spec.grad_clip > 0 else adamw
