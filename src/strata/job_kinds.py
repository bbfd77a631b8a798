"""One row per job kind: how it runs, what it reads, how its outputs are compared and moved.

`strata exec` (so `strata run`, `strata submit` and the demo), the run manifests and
`strata reproduce` know a kind only through its row here. A new kind is its model in
strata.spec (named in spec/load.py's JOB_KINDS, which loads job files) and one row.

A row's `prepare` makes every check the kind has (inputs present, shards intact, the
sequence length within the data, a resumable checkpoint, room on the cluster) and writes
nothing; it returns the function that starts the job. So a refused job leaves no file
behind: `jobs.execute` writes the job's record only between the two.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from strata.errors import JobError
from strata.shards import load_manifest
from strata.spec import PipelineJob, SweepJob, TrainJob
from strata.spec.load import Job
from strata.spec.train import SourceSpec
from strata.storage import Location

Start = Callable[[], dict[str, Any]]
AnyJob = TypeVar("AnyJob", bound=Job)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTarget:
    """Where a job runs: the stack (recorded in its run manifest) and the instance type of its
    nodes (recorded too; training measures MFU against that type's peak FLOP/s)."""

    stack: str = "local"
    instance_type: str = "cpu"


@dataclass(frozen=True, slots=True, kw_only=True)
class JobKind:
    """How Strata handles one kind of job (the `kind:` of a job file)."""

    name: str
    spec: type[Job]
    paths: tuple[str, ...]  # dotted keys of local paths, made absolute before the job runs
    output: str  # dotted key of the output folder (local or s3://): what `reproduce` redirects
    prepare: Callable[[Any, RunTarget], Start]  # checks, writes nothing; returns the run
    input_files: Callable[[Any], list[Path]]  # what the run manifest fingerprints
    outputs_fingerprint: Callable[[Location], dict[str, Any]]  # what a reproduction must match


def _pipeline_inputs(job: PipelineJob) -> list[Path]:
    """Local input files (folders walked) and the tokenizer file of `tokenizer.path`, if any;
    object-storage URIs and collected sources are not hashed. JobError if a named file is
    missing or a folder holds nothing readable."""
    from strata.pipeline.read import input_files

    tokenizer = [Path(job.tokenizer.path)] if job.tokenizer.path else []
    if tokenizer and not tokenizer[0].is_file():
        raise JobError(f"job {job.name}: key `tokenizer.path`: {tokenizer[0]} does not exist")
    local = [p for p in job.input.paths if "://" not in p]
    if not local:
        return tokenizer
    try:
        files = [Path(f) for f in input_files(job.input.with_values({"paths": local}))]
    except ValueError as exc:
        raise JobError(f"job {job.name}: {exc}") from None
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise JobError(f"job {job.name}: key `input.paths`: {', '.join(missing)} does not exist")
    return files + tokenizer


def _prepare_pipeline(job: PipelineJob, target: RunTarget) -> Start:
    from strata.pipeline.run import run_pipeline

    _pipeline_inputs(job)
    return functools.partial(run_pipeline, job)


def _shard_files(job: TrainJob | SweepJob) -> list[Path]:
    return sorted(
        p
        for source in job.data.blend()
        for p in Path(source.shards).glob("*")
        if p.suffix in (".bin", ".idx", ".json")
    )


def _prepare_train(job: TrainJob, target: RunTarget) -> Start:
    if job.backend == "jax":
        from strata.train.jax.launch import prepare_jax_training

        return prepare_jax_training(job, instance_type=target.instance_type)
    from strata.train.launch import prepare_training

    return prepare_training(job, instance_type=target.instance_type)


def _prepare_sweep(job: SweepJob, target: RunTarget) -> Start:
    from strata.sweep import prepare_sweep

    return prepare_sweep(job, instance_type=target.instance_type)


def _shard_checksums(out: Location) -> dict[str, Any]:
    manifest = load_manifest(out / "shards")
    return {"shards": [s["sha256"] for s in manifest["shards"]]}


def _step_losses(out: Location) -> dict[str, Any]:
    from strata.train.metrics import read_metrics

    return {"losses": [row["loss"] for row in read_metrics(out.local_path() / "metrics.jsonl")]}


def _sweep_losses(out: Location) -> dict[str, Any]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {"losses": [json.loads(line)["final_loss"] for line in lines]}


KINDS: dict[str, JobKind] = {
    row.name: row
    for row in (
        JobKind(
            name="pipeline",
            spec=PipelineJob,
            paths=("input.paths", "collect.dir", "tokenizer.path", "output.dir"),
            output="output.dir",
            prepare=_prepare_pipeline,
            input_files=_pipeline_inputs,
            outputs_fingerprint=_shard_checksums,
        ),
        JobKind(
            name="train",
            spec=TrainJob,
            paths=("data.shards", "data.sources", "output.dir"),
            output="output.dir",
            prepare=_prepare_train,
            input_files=_shard_files,
            outputs_fingerprint=_step_losses,
        ),
        JobKind(
            name="sweep",
            spec=SweepJob,
            paths=("data.shards", "data.sources", "output.dir"),
            output="output.dir",
            prepare=_prepare_sweep,
            input_files=_shard_files,
            outputs_fingerprint=_sweep_losses,
        ),
    )
}


def kind_of(job: Job) -> JobKind:
    return KINDS[job.kind]


def _value(job: Job, key: str) -> Any:
    return functools.reduce(getattr, key.split("."), job)


def _absolute(value: Any) -> Any:
    """A local path made absolute; URIs and empty values (an unset folder) stay as they are."""
    if isinstance(value, list):
        return [_absolute(v) for v in value]
    if isinstance(value, SourceSpec):
        return value.model_copy(update={"shards": _absolute(value.shards)})
    return value if not value or "://" in value else str(Path(value).resolve())


def resolve_paths(job: AnyJob) -> AnyJob:
    """A copy of the job whose file paths are absolute, so it runs from any directory."""
    return cast(AnyJob, job.with_values({key: _absolute(_value(job, key)) for key in kind_of(job).paths}))


def output_dir(job: Job) -> Location:
    """The job's output folder: a local path or an object-storage URL (pipeline jobs only;
    the spec refuses `s3://` for training's outputs)."""
    return Location(str(_value(job, kind_of(job).output)))


def redirect(job: AnyJob, out: Location | Path | str) -> AnyJob:
    """A copy of the job that writes its outputs to `out`."""
    return cast(AnyJob, job.with_values({kind_of(job).output: str(out)}))


def job_from_data(data: Any, source: str) -> Job:
    """A job from the mapping Strata recorded (a run manifest, `strata exec --job-json`)."""
    name = data.get("kind") if isinstance(data, dict) else None
    if name not in KINDS:
        raise JobError(f"{source}: key `kind`: got {name!r}; allowed: {', '.join(KINDS)}")
    try:
        return KINDS[name].spec.model_validate(data)
    except ValidationError as exc:
        raise JobError(f"{source}: not a valid {name} job: {exc}".replace("\n", " ")) from None
