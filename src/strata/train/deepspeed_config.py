"""The only place DeepSpeed's JSON config is made."""

from __future__ import annotations

from typing import Any

from strata.spec.train import TrainJob


def build_ds_config(job: TrainJob, world_size: int) -> dict[str, Any]:
    """DeepSpeed config for a job on `world_size` data-parallel ranks.

    fp32 on CPU (gloo), bf16 on GPU. AdamW uses torch's implementation so nothing
    is compiled at start; the LR follows linear warmup then cosine decay.
    """
    b, opt = job.batch, job.optimizer
    zero: dict[str, Any] = {"stage": job.zero.stage}
    if job.zero.stage == 3:
        # Without this, small models keep every parameter whole and nothing is partitioned.
        zero["stage3_param_persistence_threshold"] = 0
    return {
        "train_micro_batch_size_per_gpu": b.micro_batch_size,
        "gradient_accumulation_steps": b.grad_accum_steps,
        "train_batch_size": b.micro_batch_size * b.grad_accum_steps * world_size,
        "gradient_clipping": opt.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": job.workers.use_gpu},
        "optimizer": {
            "type": "AdamW",
            "params": {
                "lr": opt.lr,
                "betas": list(opt.betas),
                "weight_decay": opt.weight_decay,
                "torch_adam": True,
            },
        },
        "scheduler": {
            "type": "WarmupCosineLR",
            "params": {
                "total_num_steps": job.steps,
                # DeepSpeed needs at least one warmup step; with none asked for, start at the peak.
                "warmup_num_steps": max(1, opt.warmup_steps),
                "warmup_min_ratio": 0.0 if opt.warmup_steps else 1.0,
                "cos_min_ratio": opt.min_lr_ratio,
            },
        },
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
