"""`strata plan`: a compute-optimal run from a budget (strata.scaling), its layout and, on
request, a training job for it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from strata.errors import StrataError


def _plan(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from strata.scaling.laws import LAWS
    from strata.scaling.layout import format_layout, plan_layout
    from strata.scaling.planner import Budget, PlanInputError, format_plan, plan, train_job_from_plan
    from strata.shards import load_manifest
    from strata.spec import TrainJob
    from strata.spec.catalog import load_catalog

    catalog = load_catalog()
    available = shard_dir = None
    if args.manifest:
        shard_dir = Path(args.manifest).parent if Path(args.manifest).is_file() else Path(args.manifest)
        try:
            available = int(load_manifest(shard_dir)["total_tokens"])
        except (OSError, KeyError, ValueError) as exc:
            raise StrataError(f"--manifest {args.manifest}: cannot read the token count: {exc}") from None
    preset = None
    if args.model:
        from strata.spec.models import PRESETS, build_model_config
        from strata.spec.train import ModelSpec

        if args.model not in PRESETS:
            raise StrataError(f"--model {args.model!r}: unknown; known: {', '.join(PRESETS)}")
        preset = build_model_config(ModelSpec(preset=args.model, seq_len=args.seq_len), args.vocab_size)
    try:
        budget = Budget(
            flops=args.compute,
            accelerator_hours=args.gpu_hours,
            usd=args.dollars,
            params=args.params or (preset.param_count() if preset and args.tokens else None),
            tokens=args.tokens,
        )
        result = plan(
            law=LAWS[args.law],
            budget=budget,
            catalog=catalog,
            instance_name=args.instance or args.accelerator,
            mfu=args.mfu,
            nodes=args.nodes,
            days=args.days,
            available_tokens=available,
            vocab_size=args.vocab_size,
            seq_len=args.seq_len,
        )
        proposal = plan_layout(result, catalog, preset)
    except PlanInputError as exc:
        flags = "/".join(PLAN_FLAGS[q] for q in exc.quantities)
        raise StrataError(f"{flags}: {exc}" if flags else str(exc)) from None
    if args.json:
        print(
            json.dumps({**asdict(result), "layout": asdict(proposal.layout) if proposal else None}, indent=2)
        )
    else:
        print(format_plan(result))
        if proposal:
            print(format_layout(proposal))
    if args.write_job:
        path = Path(args.write_job)
        per_node = catalog.get(result.instance).accelerators_per_node if result.instance else 0
        shards = str(shard_dir or "runs/pipeline/shards")
        job = train_job_from_plan(result, name=path.stem, shards=shards, accelerators_per_node=per_node)
        TrainJob.model_validate(job)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(job, sort_keys=False), encoding="utf-8")
        print(f"wrote {path}")


# The planner's input quantities (strata.scaling.planner.PlanInputError) and the flags that set them.
PLAN_FLAGS = {
    "flops": "--compute",
    "accelerator_hours": "--gpu-hours",
    "usd": "--dollars",
    "params": "--params",
    "tokens": "--tokens",
    "instance": "--instance/--accelerator",
    "mfu": "--mfu",
    "nodes": "--nodes",
    "days": "--days",
    "available_tokens": "--manifest",
    "vocab_size": "--vocab-size",
    "seq_len": "--seq-len",
}


def add_plan_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="plan a compute-optimal run from a budget (scaling laws)")
    from strata.scaling.laws import DEFAULT_LAW, LAWS

    p.add_argument(
        "--law",
        choices=list(LAWS),
        default=DEFAULT_LAW,
        help=f"scaling law (default {DEFAULT_LAW}: the Besiroglu et al. 2024 refit of Chinchilla; see README)",
    )
    budget = p.add_argument_group("budget (one of)")
    budget.add_argument("--compute", type=float, metavar="FLOPS", help="training compute in FLOPs")
    budget.add_argument(
        "--gpu-hours", type=float, metavar="H", help="accelerator-hours (needs --accelerator)"
    )
    budget.add_argument("--dollars", type=float, metavar="USD", help="on-demand dollars (needs --instance)")
    budget.add_argument(
        "--params", type=float, metavar="N", help="with --tokens: plan this model and data size"
    )
    budget.add_argument("--tokens", type=float, metavar="D", help="with --params")
    p.add_argument("--accelerator", metavar="TYPE", help="catalog instance type or accelerator (e.g. H100)")
    p.add_argument("--instance", metavar="TYPE", help="catalog instance type for time and cost")
    p.add_argument(
        "--mfu", type=float, help="model FLOPs utilization (default: measured for the accelerator, else 0.4)"
    )
    p.add_argument("--nodes", type=int, help="nodes to run on: gives the wall-clock time")
    p.add_argument("--days", type=float, help="target wall-clock days: gives the nodes needed")
    p.add_argument(
        "--manifest", help="a pipeline's shards/manifest.json: warn when the plan needs more tokens"
    )
    p.add_argument("--vocab-size", type=int, default=50_304, help="vocabulary of the planned model")
    p.add_argument("--seq-len", type=int, default=2048, help="sequence length of the planned model")
    p.add_argument(
        "--model",
        metavar="PRESET",
        help="a llama preset (llama-7b ... llama-70b): its parameters, and its shape for the layout",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--write-job", metavar="FILE", help="write a training job for the plan")
    p.set_defaults(func=_plan)
