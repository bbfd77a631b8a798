"""The `strata` command: each subcommand parses, loads the declaration, calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from strata.errors import StrataError
from strata.plan_command import add_plan_parser

if TYPE_CHECKING:
    from strata.spec import TrainJob

logger = logging.getLogger("strata")
STACK_HELP = "stack name (stacks/Pulumi.<stack>.yaml) or a stack config file"


def _validate(args: argparse.Namespace) -> None:
    from strata.spec import ClusterSpec, TrainJob, load_spec

    spec = load_spec(args.file)
    kind = "cluster" if isinstance(spec, ClusterSpec) else spec.kind
    estimate = _memory(args, spec) if isinstance(spec, TrainJob) else None
    print(f"{args.file}: valid {kind} declaration")
    if args.show and estimate:
        print(estimate)
    if args.show:
        print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), end="")
        if isinstance(spec, TrainJob):
            from strata.train.deepspeed_config import build_ds_config

            stages = spec.parallel.pipeline_stages
            print(
                f"# DeepSpeed config for {spec.workers.num_workers} workers: {spec.parallel.tensor} tensor-parallel "
                f"rank(s) × {stages} pipeline stage(s) × {spec.data_parallel} data-parallel rank(s)"
            )
            print(json.dumps(build_ds_config(spec, spec.data_parallel), indent=2))


def _memory(args: argparse.Namespace, job: TrainJob) -> str | None:
    """The job's memory per accelerator on the instance type `--instance-type` or `--stack` names
    (SpecError if it does not fit), as text; None without an instance type with accelerators."""
    from strata.connection import resolve_stack
    from strata.shards import load_manifest
    from strata.spec import load_cluster
    from strata.spec.catalog import load_catalog
    from strata.spec.memory import check_fits, format_estimate
    from strata.spec.models import build_model_config

    if args.instance_type:
        name = args.instance_type
    elif args.stack:
        name = load_cluster(resolve_stack(args.stack).file).instance_type
    else:
        return None
    instance = load_catalog().get(name)
    if not instance.accelerator_memory_gib or not job.workers.use_gpu:
        return f"# memory: {name} has no accelerators or the job does not use them; nothing to check"
    vocab, vocab_from = args.vocab_size, "--vocab-size"
    if vocab is None:
        try:
            vocab, vocab_from = (
                int(load_manifest(Path(job.data.blend()[0].shards))["vocab_size"]),
                "the shards' manifest",
            )
        except (OSError, KeyError, ValueError):
            vocab, vocab_from = (
                DEFAULT_VOCAB,
                f"assumed (no manifest in {job.data.blend()[0].shards}; set --vocab-size)",
            )
    cfg = build_model_config(job.model, vocab)
    estimate = check_fits(cfg, job, instance, str(args.file))
    return f"# memory per accelerator on {name} (vocabulary {vocab}, {vocab_from}):\n" + format_estimate(
        estimate
    )


DEFAULT_VOCAB = 32_000  # Llama 2's tokenizer: the memory estimate's vocabulary when no manifest gives one


def _up(args: argparse.Namespace) -> None:
    from strata.cluster import up

    result = up(args.stack)
    connection = result.connection
    for host, changed in sorted(result.changed.items()):
        print(f"{host}: ready (changed={changed})")
    print(
        f"cluster {connection.stack} is up: dashboard {connection.dashboard_url}, Ray {connection.gcs_address}"
    )


def _down(args: argparse.Namespace) -> None:
    from strata.cluster import down

    down(args.stack)
    print(f"cluster {args.stack} is down")


def _export(args: argparse.Namespace) -> None:
    from strata.train.export import export_consolidated, export_hf

    run_dir, out = Path(args.run_dir), Path(args.out)
    written = export_hf(run_dir, out) if args.format == "hf" else export_consolidated(run_dir, out)
    print(f"exported {run_dir} as {args.format}: {written}")


def _health(args: argparse.Namespace) -> None:
    from strata.cluster import health

    for host, result in sorted(health(args.stack, args.floor).items()):
        print(
            f"{host}: all_reduce {result['bus_gb_s']} GB/s over {result['world']} nodes ({result['backend']}): ok"
        )


def _submit(args: argparse.Namespace) -> None:
    from strata.connection import load_connection
    from strata.jobs import submit
    from strata.spec import load_job

    submit(load_job(args.file), load_connection(args.stack))


def _run(args: argparse.Namespace) -> None:
    from strata.jobs import run_locally
    from strata.spec import load_job

    run_locally(load_job(args.file))


def _exec(args: argparse.Namespace) -> None:
    import ray

    from strata.job_kinds import RunTarget, job_from_data
    from strata.jobs import execute
    from strata.spec import load_job

    job = load_job(args.file) if args.file else job_from_data(json.loads(args.job_json), "--job-json")
    ray.init(logging_level=logging.WARNING)
    try:
        result = execute(job, RunTarget(stack=args.stack, instance_type=args.instance_type))
        print(json.dumps(result, indent=2))
    finally:
        ray.shutdown()


def _reproduce(args: argparse.Namespace) -> None:
    from strata.reproduce import reproduce
    from strata.storage import Location

    # Locations, not Paths: a Path would fold `s3://bucket` into `s3:/bucket`.
    result = reproduce(Location(args.manifest), Location(args.out) if args.out else None, args.stack)
    print(json.dumps(result, indent=2))


def _demo(args: argparse.Namespace) -> None:
    from strata.demo import run_demo

    report = run_demo(args.stack, Path(args.out))
    print(f"demo finished; report: {report}")


def _images(args: argparse.Namespace) -> None:
    from strata.images.render import write_images

    written = write_images(args.toolchain, check=args.check)
    if args.check:
        print(f"images/ are up to date with toolchain {args.toolchain}")
    else:
        print(
            f"toolchain {args.toolchain}: " + (", ".join(map(str, written)) or "images/ already up to date")
        )


def _add_job_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """submit, run, exec and reproduce: the ways a job runs."""
    p = sub.add_parser("submit", help="submit a job to a running cluster and stream its logs")
    p.add_argument("file")
    p.add_argument("--stack", default="local", help=STACK_HELP)
    p.set_defaults(func=_submit)

    p = sub.add_parser("run", help="run a job on a private local Ray started and stopped for it")
    p.add_argument("file")
    p.set_defaults(func=_run)

    p = sub.add_parser("exec", help="run a job on the Ray this process is in (a submitted job's entrypoint)")
    job = p.add_mutually_exclusive_group(required=True)
    job.add_argument("file", nargs="?", help="a job file")
    job.add_argument("--job-json", metavar="JSON", help="the job inline (what `run` and `submit` pass)")
    p.add_argument("--stack", default="local", help="the stack it runs on, for its run manifest")
    p.add_argument(
        "--instance-type", default="cpu", help="the catalog type of the nodes: run manifest, MFU peak"
    )
    p.set_defaults(func=_exec)

    p = sub.add_parser("reproduce", help="run a recorded job again (from its run-manifest.json) and compare")
    p.add_argument("manifest", help="a run-manifest.json written next to a job's outputs (path or s3://)")
    p.add_argument(
        "--out", help="output folder of the rerun, path or s3:// (default: the original's + -reproduced)"
    )
    p.add_argument("--stack", help="submit to this running cluster instead of a private local Ray")
    p.set_defaults(func=_reproduce)


def build_parser() -> argparse.ArgumentParser:
    from strata.classifier_command import add_classifier_parser

    parser = argparse.ArgumentParser(
        prog="strata", description="Declarative infrastructure for LLM pre-training."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a stack config or job file")
    p.add_argument("file")
    p.add_argument(
        "--show",
        action="store_true",
        help="print the declaration with defaults (a train job: memory per accelerator, DeepSpeed config)",
    )
    p.add_argument(
        "--stack", help="train job: check its memory on this stack's instance type (" + STACK_HELP + ")"
    )
    p.add_argument("--instance-type", metavar="TYPE", help="train job: check its memory on this catalog type")
    p.add_argument("--vocab-size", type=int, help="train job: vocabulary (default: the shards' manifest)")
    p.set_defaults(func=_validate)

    for name, func, text in (("up", _up, "configure the hosts and start Ray"), ("down", _down, "stop Ray")):
        p = sub.add_parser(name, help=text)
        p.add_argument("stack", help=STACK_HELP)
        p.set_defaults(func=func)

    p = sub.add_parser("export", help="export a training run: one .pt file, or a transformers checkpoint")
    p.add_argument("run_dir", help="a training job's output directory (model.pt, model-config.json)")
    p.add_argument("--format", choices=["pt", "hf"], default="pt", help="pt: one file; hf: save_pretrained")
    p.add_argument("--out", required=True, help="output file (pt) or directory (hf)")
    p.set_defaults(func=_export)

    p = sub.add_parser("health", help="check every node (GPUs, all_reduce), drain failing ones in Slurm")
    p.add_argument("stack", help=STACK_HELP)
    p.add_argument("--floor", type=float, metavar="GB/S", help="bus bandwidth floor (default: the catalog's)")
    p.set_defaults(func=_health)

    _add_job_parsers(sub)
    add_plan_parser(sub)
    add_classifier_parser(sub)

    p = sub.add_parser("images", help="render images/ (Dockerfile, Packer) from the toolchain table")
    p.add_argument("--toolchain", default="cu130", help="row of src/strata/spec/catalog/toolchains.csv")
    p.add_argument("--check", action="store_true", help="fail if the committed files are stale")
    p.set_defaults(func=_images)

    p = sub.add_parser("demo", help="up local → pipeline → train → report → down")
    p.add_argument("--stack", default="local", help=STACK_HELP)
    p.add_argument("--out", default="runs/demo", help="directory for outputs and the report")
    p.set_defaults(func=_demo)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like an error, so `finally` blocks stop the Ray processes Strata started."""
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.func(args)
    except StrataError as exc:
        print(f"strata: error: {exc}", file=sys.stderr)
        sys.exit(2)
