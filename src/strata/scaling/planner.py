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
from strata.scaling.laws import Law, compute_flops
from strata.scaling.shapes import shape_for_params
from strata.spec.catalog import Catalog, InstanceType

DEFAULT_MFU = 0.4


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """Exactly one of: flops; accelerator_hours; usd; or params and tokens together."""

    flops: float | None = None
    accelerator_hours: float | None = None
    usd: float | None = None
    params: float | None = None
    tokens: float | None = None


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
        raise StrataError(
            f"--instance/--accelerator {name!r}: not an instance type or accelerator of the catalog; "
            f"accelerators: {', '.join(accelerators)}; instance types: {', '.join(catalog.names())}"
        )
    return matches[0]


def _mfu(mfu: float | None, instance: InstanceType | None) -> tuple[float, str]:
    if mfu is not None:
        if not 0 < mfu <= 1:
            raise StrataError(f"--mfu {mfu}: must be in (0, 1]")
        return mfu, "given"
    if instance is not None and instance.accelerator in measured_mfu():
        value, source = measured_mfu()[instance.accelerator]
        return value, f"measured ({source})"
    return DEFAULT_MFU, "default"


def _node_flops_per_s(instance: InstanceType, mfu: float) -> float:
    peak = instance.peak_bf16_flops_per_node
    if not peak:
        raise StrataError(
            f"instance type {instance.name!r} has no accelerator peak in the catalog; pick a GPU/TPU type"
        )
    return peak * mfu


def _flops(budget: Budget, instance: InstanceType | None, mfu: float) -> float:
    given = [
        budget.flops is not None,
        budget.accelerator_hours is not None,
        budget.usd is not None,
        budget.params is not None or budget.tokens is not None,
    ]
    if sum(given) != 1:
        raise StrataError(
            "give exactly one budget: --compute, --gpu-hours, --dollars, or --params with --tokens"
        )
    if budget.flops is not None:
        return budget.flops
    if budget.params is not None or budget.tokens is not None:
        if budget.params is None or budget.tokens is None:
            raise StrataError("--params and --tokens go together")
        return compute_flops(budget.params, budget.tokens)
    if instance is None:
        raise StrataError(
            "--gpu-hours and --dollars need --instance (or --accelerator) to convert into FLOPs"
        )
    per_node = _node_flops_per_s(instance, mfu)
    if budget.accelerator_hours is not None:
        return budget.accelerator_hours / instance.accelerators_per_node * 3600 * per_node
    if instance.usd_per_hour is None:
        raise StrataError(
            f"instance type {instance.name!r} has no public price in the catalog; use --gpu-hours"
        )
    assert budget.usd is not None  # one of the four is set, checked above
    return budget.usd / instance.usd_per_hour * 3600 * per_node


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
    """Plan a run from a budget under `law`."""
    if nodes is not None and days is not None:
        raise StrataError("give --nodes or --days, not both")
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
    if available_tokens is not None and tokens > available_tokens:
        warnings.append(
            f"the plan needs {tokens:.3g} tokens but the manifest has {available_tokens:.3g}: "
            f"{tokens / available_tokens:.1f} epochs over the data"
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
        shape_params=shape.matmul_params(),
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
        ("law", p.law),
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
    workers = max(1, (plan_.nodes or 1) * max(1, accelerators_per_node))
    micro_batch = 8
    tokens_per_step = micro_batch * plan_.seq_len * workers
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
        "batch": {"micro_batch_size": micro_batch, "grad_accum_steps": 1},
        "steps": max(1, math.ceil(plan_.tokens / tokens_per_step)),
        "workers": {"num_workers": workers, "use_gpu": accelerators_per_node > 0},
        "output": {"dir": f"runs/{name}"},
    }
