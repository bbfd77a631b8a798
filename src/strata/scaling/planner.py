"""The compute-optimal planner behind `strata plan`.

A budget (FLOPs, accelerator-hours or dollars on a catalog instance type, or a
given N and D) becomes compute C; a law splits C into parameters N and tokens D;
the catalog and the MFU turn C into node-hours, nodes, wall-clock time and cost.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from strata.errors import StrataError
from strata.scaling.laws import LAW_SOURCES, Law, compute_flops
from strata.scaling.shapes import shape_for_params
from strata.spec.catalog import Catalog, InstanceType

DEFAULT_MFU = 0.4
# Above any run worth planning: over a thousand times the largest training runs
# estimated to date (~1e26 to 5e26 FLOPs, Epoch AI's notable-models data, 2025).
MAX_FLOPS = 1e30
MICRO_BATCH = 8  # sequences per worker per step in a job written from a plan
SHAPE_TOLERANCE = 0.1  # warn when the model shape is further than this from the planned N


class PlanInputError(StrataError):
    """A planner input is missing, contradictory or out of range.

    `quantities` name the inputs concerned by their Budget or `plan()` argument
    names (flops, accelerator_hours, usd, params, tokens, instance, mfu, nodes, days,
    available_tokens, vocab_size, seq_len); the CLI maps them to its flags.
    """

    def __init__(self, message: str, *quantities: str) -> None:
        super().__init__(message)
        self.quantities = quantities


# Budget quantity -> (what it is, unit) for messages.
BUDGET_QUANTITIES = {
    "flops": ("compute budget", "FLOPs"),
    "accelerator_hours": ("accelerator-hour budget", "accelerator-hours"),
    "usd": ("dollar budget", "USD"),
    "params": ("parameter count", "parameters"),
    "tokens": ("token count", "tokens"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Exactly one of: flops; accelerator_hours; usd; or params and tokens together.

    Each given value must be positive and finite (PlanInputError otherwise).
    """

    flops: float | None = None
    accelerator_hours: float | None = None
    usd: float | None = None
    params: float | None = None
    tokens: float | None = None

    def __post_init__(self) -> None:
        for quantity, (what, unit) in BUDGET_QUANTITIES.items():
            value = getattr(self, quantity)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise PlanInputError(f"{what} must be positive and finite, got {value:g} {unit}", quantity)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A planned run; figures that need an instance type are None without one."""

    law: str
    flops: float
    params: float
    tokens: float
    tokens_per_param: float
    predicted_loss: float
    n_layers: int
    d_model: int
    n_heads: int
    seq_len: int
    vocab_size: int
    shape_params: int
    instance: str | None
    mfu: float
    mfu_source: str
    node_hours: float | None
    nodes: int | None
    wall_hours: float | None
    usd: float | None
    warnings: list[str] = field(default_factory=list)


@cache
def measured_mfu() -> dict[str, tuple[float, str]]:
    """Recorded MFU per accelerator (measured by Strata's benchmarks)."""
    text = resources.files("strata.scaling").joinpath("measured_mfu.csv").read_text("utf-8")
    return {
        row["accelerator"]: (float(row["mfu"]), row["source"]) for row in csv.DictReader(text.splitlines())
    }


def resolve_instance(name: str, catalog: Catalog) -> InstanceType:
    """A catalog instance type, or the first type carrying an accelerator named like `name` (e.g. H100)."""
    if name in catalog:
        return catalog.get(name)
    matches = [row for row in catalog if row.accelerator.lower().startswith(name.lower())]
    if not matches:
        accelerators = sorted({row.accelerator for row in catalog if row.accelerators_per_node})
        raise PlanInputError(
            f"{name!r} is not an instance type or accelerator of the catalog; "
            f"accelerators: {', '.join(accelerators)}; instance types: {', '.join(catalog.names())}",
            "instance",
        )
    return matches[0]


def _mfu(mfu: float | None, instance: InstanceType | None) -> tuple[float, str]:
    if mfu is not None:
        if not 0 < mfu <= 1:  # also refuses nan
            raise PlanInputError(f"model FLOPs utilization must be in (0, 1], got {mfu:g}", "mfu")
        return mfu, "given"
    if instance is not None and instance.accelerator in measured_mfu():
        value, source = measured_mfu()[instance.accelerator]
        return value, f"measured ({source})"
    return DEFAULT_MFU, "default"


def _node_flops_per_s(instance: InstanceType, mfu: float) -> float:
    peak = instance.peak_bf16_flops_per_node
    if not peak:
        raise PlanInputError(
            f"instance type {instance.name!r} has no accelerator peak in the catalog; pick a GPU/TPU type",
            "instance",
        )
    return peak * mfu


def _flops(budget: Budget, instance: InstanceType | None, mfu: float) -> float:
    given = {
        "flops": budget.flops is not None,
        "accelerator_hours": budget.accelerator_hours is not None,
        "usd": budget.usd is not None,
        "params": budget.params is not None or budget.tokens is not None,
    }
    if sum(given.values()) != 1:
        raise PlanInputError(
            "give exactly one budget: compute, accelerator-hours, dollars, or parameters with tokens",
            *(q for q, g in given.items() if g),
        )
    if budget.flops is not None:
        return _in_range(budget.flops, "flops")
    if budget.params is not None or budget.tokens is not None:
        if budget.params is None or budget.tokens is None:
            raise PlanInputError("a parameter count and a token count go together", "params", "tokens")
        return _in_range(compute_flops(budget.params, budget.tokens), "params", "tokens")
    if instance is None:
        raise PlanInputError(
            "an accelerator-hour or dollar budget needs an instance type to convert into FLOPs", "instance"
        )
    per_node = _node_flops_per_s(instance, mfu)
    if budget.accelerator_hours is not None:
        flops = budget.accelerator_hours / instance.accelerators_per_node * 3600 * per_node
        return _in_range(flops, "accelerator_hours")
    if instance.usd_per_hour is None:
        raise PlanInputError(
            f"instance type {instance.name!r} has no public price in the catalog; give accelerator-hours",
            "usd",
        )
    assert budget.usd is not None  # one of the four is set, checked above
    return _in_range(budget.usd / instance.usd_per_hour * 3600 * per_node, "usd")


def _in_range(flops: float, *quantities: str) -> float:
    if not flops <= MAX_FLOPS:  # also refuses an overflow to inf
        raise PlanInputError(
            f"the budget comes to {flops:.3g} FLOPs, above the planner's limit of {MAX_FLOPS:.0e} "
            "(over a thousand times the largest runs to date); check the exponent",
            *quantities,
        )
    return flops


def _check_run_inputs(
    nodes: int | None, days: float | None, available_tokens: int | None, vocab_size: int, seq_len: int
) -> None:
    """PlanInputError naming the first of plan()'s run inputs that is out of range."""
    if nodes is not None and days is not None:
        raise PlanInputError("give a node count or a wall-clock target, not both", "nodes", "days")
    if nodes is not None and nodes < 1:
        raise PlanInputError(f"node count must be at least 1, got {nodes}", "nodes")
    if days is not None and not (math.isfinite(days) and days > 0):
        raise PlanInputError(f"wall-clock target must be positive and finite, got {days:g} days", "days")
    if available_tokens is not None and available_tokens < 0:
        raise PlanInputError(
            f"available tokens cannot be negative, got {available_tokens}", "available_tokens"
        )
    if vocab_size < 1:
        raise PlanInputError(f"vocabulary size must be at least 1 token, got {vocab_size}", "vocab_size")
    if seq_len < 1:
        raise PlanInputError(f"sequence length must be at least 1 token, got {seq_len}", "seq_len")


def tokens_per_step(*, nodes: int | None, accelerators_per_node: int, seq_len: int) -> tuple[int, int]:
    """(workers, tokens per optimizer step) of a job written from a plan: one worker per accelerator."""
    workers = max(1, (nodes or 1) * max(1, accelerators_per_node))
    return workers, MICRO_BATCH * seq_len * workers


def plan(
    *,
    law: Law,
    budget: Budget,
    catalog: Catalog,
    instance_name: str | None = None,
    mfu: float | None = None,
    nodes: int | None = None,
    days: float | None = None,
    available_tokens: int | None = None,
    vocab_size: int = 50_304,
    seq_len: int = 2048,
) -> Plan:
    """Plan a run from a budget under `law`; PlanInputError names any input out of range."""
    _check_run_inputs(nodes, days, available_tokens, vocab_size, seq_len)
    instance = resolve_instance(instance_name, catalog) if instance_name else None
    mfu_value, mfu_source = _mfu(mfu, instance)
    flops = _flops(budget, instance, mfu_value)
    if budget.params is not None and budget.tokens is not None:
        params, tokens = budget.params, budget.tokens
    else:
        params, tokens = law.optimal(flops)
    shape = shape_for_params(params, vocab_size=vocab_size, seq_len=seq_len)
    node_hours = wall_hours = usd = None
    n_nodes = nodes
    if instance is not None:
        node_hours = flops / _node_flops_per_s(instance, mfu_value) / 3600
        if days is not None:
            n_nodes = max(1, math.ceil(node_hours / (days * 24)))
        if n_nodes is not None:
            wall_hours = node_hours / n_nodes
        if instance.usd_per_hour is not None:
            usd = node_hours * instance.usd_per_hour
    warnings = []
    if available_tokens == 0:
        warnings.append(f"the plan needs {tokens:.3g} tokens but the manifest has none")
    elif available_tokens is not None and tokens > available_tokens:
        warnings.append(
            f"the plan needs {tokens:.3g} tokens but the manifest has {available_tokens:.3g}: "
            f"{tokens / available_tokens:.1f} epochs over the data"
        )
    shape_params = shape.matmul_params()
    if abs(shape_params / params - 1) > SHAPE_TOLERANCE:
        smallest, largest = (
            shape_for_params(n, vocab_size=vocab_size, seq_len=seq_len) for n in (1, MAX_FLOPS)
        )
        warnings.append(
            f"the closest model shape has {shape_params:.3g} parameters, {shape_params / params:.3g} times "
            f"N = {params:.3g} (the shapes span {smallest.matmul_params():.3g} to "
            f"{largest.matmul_params():.3g}); a job written from this plan trains it on "
            f"{tokens:.3g} tokens: {compute_flops(shape_params, tokens):.3g} FLOPs, not {flops:.3g}"
        )
    workers, step_tokens = tokens_per_step(
        nodes=n_nodes,
        accelerators_per_node=instance.accelerators_per_node if instance else 0,
        seq_len=seq_len,
    )
    step_flops = compute_flops(shape_params, step_tokens)
    if flops < step_flops:
        warnings.append(
            f"the budget ({flops:.3g} FLOPs) is below one training step of the proposed shape: "
            f"6 x {shape_params:.3g} parameters x {step_tokens} tokens (micro-batch {MICRO_BATCH} x "
            f"seq {seq_len} x {workers} workers) = {step_flops:.3g} FLOPs; a job written from this plan "
            f"trains one step and spends {step_flops / flops:.3g} times the budget"
        )
    return Plan(
        law=law.name,
        flops=flops,
        params=params,
        tokens=tokens,
        tokens_per_param=tokens / params,
        predicted_loss=law.loss(params, tokens),
        n_layers=shape.n_layers,
        d_model=shape.d_model,
        n_heads=shape.n_heads,
        seq_len=shape.seq_len,
        vocab_size=shape.vocab_size,
        shape_params=shape_params,
        instance=instance.name if instance else None,
        mfu=mfu_value,
        mfu_source=mfu_source,
        node_hours=node_hours,
        nodes=n_nodes,
        wall_hours=wall_hours,
        usd=usd,
        warnings=warnings,
    )


def format_plan(p: Plan) -> str:
    """The plan as an aligned two-column table."""
    rows = [
        ("law", f"{p.law} ({LAW_SOURCES.get(p.law, 'given')})"),
        ("compute", f"{p.flops:.3e} FLOPs"),
        ("parameters (N)", f"{p.params:.3e}"),
        ("tokens (D)", f"{p.tokens:.3e}"),
        ("tokens per parameter", f"{p.tokens_per_param:.1f}"),
        ("predicted loss", f"{p.predicted_loss:.3f} nats/token"),
        ("model shape", f"{p.n_layers} layers x d_model {p.d_model}, {p.n_heads} heads, seq {p.seq_len}"),
        ("shape parameters", f"{p.shape_params:.3e} ({p.shape_params / p.params - 1:+.1%} of N)"),
        ("MFU", f"{p.mfu:.1%} ({p.mfu_source})"),
    ]
    if p.instance is not None:
        rows.append(("instance", p.instance))
        rows.append(("node-hours", f"{p.node_hours:,.1f}"))
        if p.nodes is not None and p.wall_hours is not None:
            rows.append(("nodes", str(p.nodes)))
            rows.append(("wall-clock", f"{p.wall_hours:,.1f} h ({p.wall_hours / 24:,.1f} days)"))
        rows.append(("cost", f"${p.usd:,.0f}" if p.usd is not None else "no public price in the catalog"))
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [f"warning: {w}" for w in p.warnings]
    return "\n".join(lines)


def train_job_from_plan(
    plan_: Plan, *, name: str, shards: str, accelerators_per_node: int
) -> dict[str, object]:
    """A training job (as YAML-ready data) for the planned shape and tokens."""
    workers, step_tokens = tokens_per_step(
        nodes=plan_.nodes, accelerators_per_node=accelerators_per_node, seq_len=plan_.seq_len
    )
    return {
        "kind": "train",
        "name": name,
        "seed": 0,
        "data": {"shards": shards},
        "model": {
            "n_layers": plan_.n_layers,
            "d_model": plan_.d_model,
            "n_heads": plan_.n_heads,
            "seq_len": plan_.seq_len,
        },
        "zero": {"stage": 2},
        "batch": {"micro_batch_size": MICRO_BATCH, "grad_accum_steps": 1},
        "steps": max(1, math.ceil(plan_.tokens / step_tokens)),
        "workers": {"num_workers": workers, "use_gpu": accelerators_per_node > 0},
        "output": {"dir": f"runs/{name}"},
    }
