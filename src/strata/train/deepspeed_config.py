"""The only place DeepSpeed's JSON config is made."""

from __future__ import annotations

from typing import Any

from strata.spec.train import TrainJob

# Megatron-style splits of Strata's Llama (HF names, strata.train.llama) for DeepSpeed AutoTP:
# "column" splits a weight's output features (rows of the torch weight), "row" its input
# features and all-reduces the output. The output head is split by vocabulary and its logits
# gathered, so the loss is the unsplit model's. Unmatched weights (embedding, norms, a tied
# head) stay whole on every rank. Source: DeepSpeed 0.19.8 AutoTPPresets.llama plus lm_head.
TENSOR_PARALLEL_SPECS: list[dict[str, Any]] = [
    {"patterns": [r".*\.self_attn\.[qkv]_proj\.weight$", r".*\.mlp\.(gate|up)_proj\.weight$"],
     "partition_type": "column"},
    {"patterns": [r".*\.self_attn\.o_proj\.weight$", r".*\.mlp\.down_proj\.weight$"],
     "partition_type": "row"},
    {"patterns": [r"^lm_head\.weight$"], "partition_type": "column", "gather_output": True},
]  # fmt: skip


def build_ds_config(job: TrainJob, world_size: int, *, load_universal: bool = False) -> dict[str, Any]:
    """DeepSpeed config for a job on `world_size` data-parallel ranks (`load_universal`: it
    resumes from a universal checkpoint, see `strata.train.checkpoints`). With
    `parallel.tensor` T > 1, DeepSpeed AutoTP splits the weights TENSOR_PARALLEL_SPECS names
    over groups of T consecutive ranks (`world_size` then counts the groups).

    fp32 on CPU (gloo); on GPU bf16 weights or fp32 weights under autocast (`precision`).
    AdamW is torch's (fused on GPU), so nothing is compiled at start. The LR schedule is
    not here: `strata.train.schedule` hands DeepSpeed its own.
    """
    b, opt, gpu = job.batch, job.optimizer, job.workers.use_gpu
    zero: dict[str, Any] = {"stage": job.zero.stage}
    if job.zero.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": gpu}
    if job.zero.stage == 3:
        # Without this, small models keep every parameter whole and nothing is partitioned.
        zero["stage3_param_persistence_threshold"] = 0
    fused = gpu and not job.zero.offload_optimizer  # the fused kernel is for state on the GPU
    adamw: dict[str, Any] = {"lr": opt.lr, "betas": list(opt.betas), "weight_decay": opt.weight_decay}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": b.micro_batch_size,
        "gradient_accumulation_steps": b.grad_accum_steps,
        "train_batch_size": b.micro_batch_size * b.grad_accum_steps * world_size,
        "gradient_clipping": opt.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": gpu and job.precision == "bf16"},
        "torch_autocast": {"enabled": gpu and job.precision == "autocast", "dtype": "bfloat16"},
        "optimizer": {
            "type": "AdamW",
            "params": {**adamw, "torch_adam": True, **({"fused": True} if fused else {})},
        },
        # torch's AdamW also steps offloaded state (DeepSpeed would insist on its compiled CPU Adam).
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if job.parallel.tensor > 1:
        config["tensor_parallel"] = {
            "autotp_size": job.parallel.tensor,
            "partition_config": {"use_default_specs": False, "layer_specs": TENSOR_PARALLEL_SPECS},
        }
    if load_universal:
        config["checkpoint"] = {"load_universal": True}
    return config
