"""Memory per accelerator of a training layout, and whether it fits the instance type.

Model states follow the ZeRO paper (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations
Toward Training Trillion Parameter Models", §3.1 and figure 1): with mixed-precision Adam a
model of Ψ parameters holds 2Ψ bytes of 16-bit weights, 2Ψ of 16-bit gradients and KΨ of
optimizer states, K = 12 (fp32 master weights, momentum and variance). Strata's precisions:
`precision: bf16` keeps bf16 weights with fp32 master copies in DeepSpeed (2 + 2 + 12 bytes
per parameter); `autocast` keeps fp32 weights and gradients and Adam's fp32 moments
(4 + 4 + 8); CPU runs are fp32 (4 + 4 + 8). ZeRO stage 1 splits the optimizer states over the
D data-parallel ranks, stage 2 the gradients too, stage 3 the weights too; `offload_optimizer`
moves the optimizer states to host memory. Tensor parallelism (T) and pipeline stages (P)
split every state by T·P (layers, and embeddings, counted as split evenly).

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", eq. 2 and §4): one block keeps s·b·h·(34 + 5·a·s/h) bytes of 16-bit
activations without recompute, s·b·h·(10 + 24/T + 5·a·s/(h·T)) with tensor parallelism and no
sequence parallelism (Strata has none), and 2·s·b·h (its input) with full recompute. Strata's
blocks call fused attention (`scaled_dot_product_attention`), which stores no s×s scores, so
the 5·a·s/h term is left out; the 34 counts GPT blocks with dropout masks, so it is an upper
estimate for Strata's blocks. With P stages the first stage holds min(P, micro-steps) micro-
batches of its L/P layers (1F1B schedule, Korthikanti §4.2.3). The logits take s·b·V·4 bytes
(fp32 for the loss), not split by T.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from strata.errors import SpecError
from strata.spec.models import ModelConfig

if TYPE_CHECKING:
    from strata.spec.catalog import InstanceType
    from strata.spec.train import TrainJob

GIB = 2**30
# Share of an accelerator's memory the estimate may fill: the rest is left for the CUDA
# context, NCCL buffers, DeepSpeed's communication buckets and allocator fragmentation
# (a margin, not a measurement).
USABLE_FRACTION = 0.9
ZERO_SOURCE = "ZeRO (Rajbhandari et al. 2020) §3.1"
ACTIVATION_SOURCE = "Korthikanti et al. 2022 eq. 2"

Precision = Literal["bf16", "autocast", "fp32"]
# Bytes per parameter on the accelerator: weights, gradients, optimizer states.
BYTES_PER_PARAM: dict[Precision, tuple[int, int, int]] = {
    "bf16": (2, 2, 12),
    "autocast": (4, 4, 8),
    "fp32": (4, 4, 8),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """How a job lays a model over its accelerators: T × P × D ranks, ZeRO stage, micro-batch."""

    tensor: int = 1
    pipeline: int = 1
    data: int = 1
    zero_stage: int = 0
    micro_batch: int = 1
    in_flight: int = 1  # micro-batches whose activations the first pipeline stage holds
    recompute: bool = False
    offload_optimizer: bool = False
    precision: Precision = "bf16"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryLine:
    """One item of the estimate; `counted` lines make up the total (the other activation line is shown)."""

    item: str
    bytes: float
    formula: str
    source: str
    counted: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryEstimate:
    """Bytes per accelerator against the accelerator's memory."""

    lines: tuple[MemoryLine, ...]
    accelerator: str
    capacity_bytes: float

    @property
    def total_bytes(self) -> float:
        return sum(line.bytes for line in self.lines if line.counted)

    @property
    def usable_bytes(self) -> float:
        return self.capacity_bytes * USABLE_FRACTION

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.usable_bytes


def state_lines(cfg: ModelConfig, layout: Layout) -> list[MemoryLine]:
    """Weights, gradients and optimizer states per accelerator (ZeRO §3.1)."""
    psi = cfg.param_count()
    w, g, k = BYTES_PER_PARAM[layout.precision]
    split = layout.tensor * layout.pipeline
    d, stage = layout.data, layout.zero_stage
    per = f"Ψ={psi:.3g}, T·P={split}"

    def line(item: str, nbytes: int, zero_from: int) -> MemoryLine:
        sharded = stage >= zero_from and d > 1
        over = split * (d if sharded else 1)
        note = f", /D={d} (ZeRO-{stage})" if sharded else ""
        return MemoryLine(item=item, bytes=nbytes * psi / over, formula=f"{nbytes}Ψ/(T·P){note}; {per}",
                          source=ZERO_SOURCE)  # fmt: skip

    lines = [line("weights", w, 3), line("gradients", g, 2)]
    if layout.offload_optimizer:
        lines.append(MemoryLine(item="optimizer states", bytes=0.0, source=ZERO_SOURCE,
                                formula=f"{k}Ψ in host memory (zero.offload_optimizer)"))  # fmt: skip
    else:
        lines.append(line("optimizer states", k, 1))
    return lines


def block_activation_bytes(cfg: ModelConfig, micro_batch: int, tensor: int) -> float:
    """16-bit activations one block keeps without recompute: s·b·h·(10 + 24/T), Korthikanti eq. 2
    without sequence parallelism, less the 5·a·s/h score term fused attention does not store."""
    return cfg.seq_len * micro_batch * cfg.d_model * (10 + 24 / tensor)


def activation_lines(cfg: ModelConfig, layout: Layout) -> list[MemoryLine]:
    """Activations at the micro-batch with and without recompute (the job's choice is counted), and logits."""
    s, b, h, t = cfg.seq_len, layout.micro_batch, cfg.d_model, layout.tensor
    layers = math.ceil(cfg.n_layers / layout.pipeline) * layout.in_flight
    held = f"L/P·m={layers}, s={s}, b={b}, h={h}, T={t}"
    block = block_activation_bytes(cfg, b, t)
    return [
        MemoryLine(
            item="activations, no recompute",
            bytes=layers * block,
            formula=f"L/P·m·s·b·h·(10+24/T); {held} (fused attention: no 5as/h term)",
            source=ACTIVATION_SOURCE,
            counted=not layout.recompute,
        ),
        MemoryLine(
            item="activations, recompute",
            bytes=layers * 2 * s * b * h + block,
            formula=f"L/P·m·2·s·b·h + one block recomputed; {held}",
            source=f"{ACTIVATION_SOURCE} and §4.1 (full recompute)",
            counted=layout.recompute,
        ),
        MemoryLine(
            item="logits",
            bytes=4 * s * b * cfg.vocab_size,
            formula=f"s·b·V·4; V={cfg.vocab_size}",
            source="fp32 logits for the cross-entropy",
        ),
    ]


def estimate_memory(cfg: ModelConfig, layout: Layout, instance: InstanceType) -> MemoryEstimate:
    """The memory one accelerator of `instance` needs for `cfg` laid out as `layout`."""
    return MemoryEstimate(
        lines=tuple(state_lines(cfg, layout) + activation_lines(cfg, layout)),
        accelerator=instance.accelerator,
        capacity_bytes=instance.accelerator_memory_gib * GIB,
    )


def format_estimate(est: MemoryEstimate) -> str:
    """The estimate as a table: item, GiB, formula, source; then the total against the capacity."""
    width = max(len(line.item) for line in est.lines)
    rows = [
        f"  {line.item.ljust(width)}  {line.bytes / GIB:8.2f} GiB{' ' if line.counted else '*'}  "
        f"{line.formula}  [{line.source}]"
        for line in est.lines
    ]
    verdict = "fits" if est.fits else "does NOT fit"
    rows.append(
        f"  {'total'.ljust(width)}  {est.total_bytes / GIB:8.2f} GiB   of {est.capacity_bytes / GIB:.0f} GiB "
        f"({est.accelerator}; {USABLE_FRACTION:.0%} usable = {est.usable_bytes / GIB:.1f} GiB): {verdict}"
    )
    rows.append("  (* shown, not counted: the job's other activation choice)")
    return "\n".join(rows)


def job_layout(job: TrainJob) -> Layout:
    """The layout a training job declares (CPU runs are fp32)."""
    tensor, stages = job.parallel.tensor, job.parallel.pipeline_stages
    return Layout(
        tensor=tensor,
        pipeline=stages,
        data=max(1, job.data_parallel),
        zero_stage=job.zero.stage,
        micro_batch=job.batch.micro_batch_size,
        in_flight=min(stages, job.batch.grad_accum_steps),
        recompute=job.activation_checkpointing,
        offload_optimizer=job.zero.offload_optimizer,
        precision=job.precision if job.workers.use_gpu else "fp32",
    )


def fixes(cfg: ModelConfig, layout: Layout, instance: InstanceType) -> list[str]:
    """Single changes of the job's settings after which it fits, cheapest first (the largest micro-batch
    that fits, recompute, a higher ZeRO stage, offload, tensor parallelism)."""
    smaller = (dataclasses.replace(layout, micro_batch=b) for b in range(layout.micro_batch - 1, 0, -1))
    largest = next((changed for changed in smaller if estimate_memory(cfg, changed, instance).fits), None)
    candidates = [(f"batch.micro_batch_size: {largest.micro_batch}", largest)] if largest else []
    if not layout.recompute:
        candidates.append(("activation_checkpointing: true", dataclasses.replace(layout, recompute=True)))
    for stage in range(layout.zero_stage + 1, 2 if layout.pipeline > 1 else 4):
        candidates.append((f"zero.stage: {stage}", dataclasses.replace(layout, zero_stage=stage)))
    if not layout.offload_optimizer and layout.pipeline == 1:
        stage = max(1, layout.zero_stage)
        key = "zero.offload_optimizer: true" + (
            f" with zero.stage: {stage}" if stage != layout.zero_stage else ""
        )
        candidates.append((key, dataclasses.replace(layout, offload_optimizer=True, zero_stage=stage)))
    ranks = layout.tensor * layout.data
    for t in (2, 4, 8):
        if (
            t > layout.tensor
            and t <= instance.accelerators_per_node
            and ranks % t == 0
            and cfg.n_heads % t == 0
        ):
            change = dataclasses.replace(layout, tensor=t, data=ranks // t)
            candidates.append((f"parallel.tensor: {t}", change))
    return [key for key, changed in candidates if estimate_memory(cfg, changed, instance).fits]


def check_fits(cfg: ModelConfig, job: TrainJob, instance: InstanceType, where: str) -> MemoryEstimate:
    """The job's estimate on `instance`; SpecError naming the settings to change if it does not fit."""
    layout = job_layout(job)
    est = estimate_memory(cfg, layout, instance)
    if est.fits:
        return est
    parts = ", ".join(f"{line.item} {line.bytes / GIB:.1f}" for line in est.lines if line.counted)
    found = fixes(cfg, layout, instance)
    advice = (
        "change one of: " + "; ".join(found)
        if found
        else "no single change of batch.micro_batch_size, activation_checkpointing, zero.stage, "
        "zero.offload_optimizer or parallel.tensor is enough; combine them, add workers with zero.stage: 3, "
        "or pick an instance type with more accelerator memory"
    )
    raise SpecError(
        f"{where}: the job needs {est.total_bytes / GIB:.1f} GiB per accelerator ({parts} GiB) but a "
        f"{instance.name} {instance.accelerator} holds {est.usable_bytes / GIB:.1f} GiB usable of "
        f"{instance.accelerator_memory_gib}; {advice}"
    )
