"""A parallel layout for a model on a number of nodes: T, P, D, ZeRO stage and micro-batch
that fit the accelerators' memory (strata.spec.memory), with the reasons for each choice.

The search prefers what costs least throughput: ZeRO-1 (its optimizer-state split costs no
extra communication over plain data parallelism, ZeRO paper §5), the smallest tensor-parallel
degree within a node (its all-reduces stay on NVLink; Narayanan et al. 2021, "Efficient
Large-Scale Language Model Training on GPU Clusters", takeaway #1), pipeline stages only when
T = accelerators per node is not enough, then ZeRO-2/3, then optimizer offload. Fitting is
judged at micro-batch 1 with recompute; then recompute is dropped if a micro-batch fits
without it (recompute costs about a third more compute), and the micro-batch grows while it fits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from strata.scaling.planner import Plan, PlanInputError
from strata.spec.catalog import Catalog, InstanceType
from strata.spec.memory import GIB, Layout, MemoryEstimate, Precision, estimate_memory
from strata.spec.models import GPTConfig, LlamaConfig, ModelConfig

MAX_MICRO_BATCH = 32  # beyond this, more sequences per step seldom raise an accelerator's throughput


@dataclass(frozen=True, slots=True, kw_only=True)
class LayoutProposal:
    """A layout that fits, its memory estimate, and why it was chosen."""

    layout: Layout
    estimate: MemoryEstimate
    reasons: tuple[str, ...]


def _powers_of_two(limit: int) -> list[int]:
    return [2**i for i in range(limit.bit_length()) if 2**i <= limit]


def _candidates(cfg: ModelConfig, instance: InstanceType, world: int) -> Iterator[tuple[Layout, str]]:
    """Layouts at micro-batch 1 with recompute, most preferred first, with the step that allows each."""
    kv_heads = cfg.n_kv_heads if isinstance(cfg, LlamaConfig) else cfg.n_heads
    tensors = [
        t
        for t in _powers_of_two(instance.accelerators_per_node)
        if world % t == 0 and cfg.n_heads % t == 0 and kv_heads % t == 0
    ]
    # DeepSpeed pipelines: Strata's llama family, ZeRO 0-1, no offload (strata.spec.train).
    stages = [p for p in _powers_of_two(cfg.n_layers) if p > 1] if isinstance(cfg, LlamaConfig) else []

    def layout(t: int, p: int, stage: int, offload: bool = False) -> Layout:
        return Layout(tensor=t, pipeline=p, data=world // (t * p), zero_stage=stage, micro_batch=1,
                      in_flight=p, recompute=True, offload_optimizer=offload)  # fmt: skip

    for t in tensors:
        yield (
            layout(t, 1, 1),
            f"T={t} is the smallest tensor-parallel degree within a node that fits with ZeRO-1",
        )
    for p in stages:
        for t in tensors:
            if world % (t * p) == 0:
                why = f"ZeRO-1 does not fit at T={tensors[-1]}; {p} pipeline stages at T={t} do"
                yield layout(t, p, 1), why
    for stage in (2, 3):
        for t in tensors if stage == 2 else [1]:  # ZeRO-3 with tensor parallelism: not offered
            yield layout(t, 1, stage), f"no ZeRO-1 layout fits; ZeRO-{stage} at T={t} does"
    for stage in (3, 1):
        yield (
            layout(1, 1, stage, True),
            f"nothing fits in accelerator memory; ZeRO-{stage} with optimizer offload does",
        )


def propose_layout(
    cfg: ModelConfig, instance: InstanceType, nodes: int, *, precision: Precision = "bf16"
) -> LayoutProposal:
    """The preferred layout of `cfg` on `nodes` × `instance` that fits; PlanInputError if none does."""
    world = nodes * instance.accelerators_per_node
    if world < 1 or not instance.accelerator_memory_gib:
        raise PlanInputError(
            f"instance type {instance.name!r} has no accelerators to lay a model on", "instance"
        )
    for candidate, why in _candidates(cfg, instance, world):
        base = dataclasses.replace(candidate, precision=precision)
        if not estimate_memory(cfg, base, instance).fits:
            continue
        reasons = [why]
        plain = dataclasses.replace(base, recompute=False)
        if estimate_memory(cfg, plain, instance).fits:
            base = plain
            reasons.append("activations fit without recompute")
        else:
            reasons.append("activation checkpointing: even micro-batch 1 does not fit without recompute")
        chosen = base
        for b in range(2, MAX_MICRO_BATCH + 1):
            bigger = dataclasses.replace(base, micro_batch=b)
            if not estimate_memory(cfg, bigger, instance).fits:
                break
            chosen = bigger
        reasons.append(
            f"micro-batch {chosen.micro_batch} is the largest that fits"
            + (f" (capped at {MAX_MICRO_BATCH})" if chosen.micro_batch == MAX_MICRO_BATCH else "")
        )
        reasons.append(f"D = {world} accelerators / (T·P) = {chosen.data} data-parallel ranks")
        return LayoutProposal(
            layout=chosen, estimate=estimate_memory(cfg, chosen, instance), reasons=tuple(reasons)
        )
    need = cfg.param_count() * 4 / GIB  # 16-bit weights and gradients stay on the accelerators
    raise PlanInputError(
        f"no layout of the {cfg.param_count():.3g}-parameter model fits {nodes} × {instance.name} "
        f"({world} × {instance.accelerator_memory_gib} GiB), even with ZeRO-3, optimizer offload and recompute "
        f"(its 16-bit weights and gradients alone are {need:,.0f} GiB); add nodes",
        "nodes",
    )


def plan_layout(plan: Plan, catalog: Catalog, model: ModelConfig | None = None) -> LayoutProposal | None:
    """The layout of a plan's model (`model`, else the plan's shape) on its instance type and
    nodes; None when the plan has no instance type or node count."""
    if plan.instance is None or plan.nodes is None:
        return None
    cfg = model or GPTConfig(vocab_size=plan.vocab_size, seq_len=plan.seq_len, n_layers=plan.n_layers,
                             d_model=plan.d_model, n_heads=plan.n_heads)  # fmt: skip
    return propose_layout(cfg, catalog.get(plan.instance), plan.nodes)


def format_layout(proposal: LayoutProposal) -> str:
    """The proposal as lines: the layout, then why."""
    lay = proposal.layout
    head = (
        f"layout: T={lay.tensor} × P={lay.pipeline} × D={lay.data}, ZeRO-{lay.zero_stage}"
        f"{' + optimizer offload' if lay.offload_optimizer else ''}, micro-batch {lay.micro_batch}, "
        f"activation checkpointing {'on' if lay.recompute else 'off'}; "
        f"{proposal.estimate.total_bytes / GIB:.1f} of {proposal.estimate.usable_bytes / GIB:.1f} GiB usable"
    )
    return "\n".join([head, *(f"  why: {reason}" for reason in proposal.reasons)])
