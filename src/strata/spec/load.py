"""Read a declaration from YAML: the only code that parses users' files.

A file is either a Pulumi stack config (top-level `config:`, the cluster under
`strata:cluster`) or a job file (top-level `kind: pipeline | train`).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from strata.errors import SpecError
from strata.spec.cluster import ClusterSpec
from strata.spec.pipeline import PipelineJob
from strata.spec.sweep import SweepJob
from strata.spec.train import TrainJob
from strata.yaml_loader import load_yaml

Spec = ClusterSpec | PipelineJob | TrainJob | SweepJob
Job = PipelineJob | TrainJob | SweepJob
JOB_KINDS: dict[str, type[Job]] = {"pipeline": PipelineJob, "train": TrainJob, "sweep": SweepJob}
CLUSTER_KEY = "strata:cluster"
# The Kubernetes stack's Ray token, set as a Pulumi secret (`pulumi config set --secret`).
RAY_TOKEN_KEY = "strata:rayAuthToken"
STACK_KEYS = (CLUSTER_KEY, RAY_TOKEN_KEY)


def load_spec(path: str | Path) -> Spec:
    """Load and validate any declaration, raising SpecError that names file and key."""
    path = Path(path)
    data = _read_yaml(path)
    if "config" in data:
        return load_cluster_from_data(path, data)
    kind = data.get("kind")
    if kind not in JOB_KINDS:
        allowed = ", ".join(JOB_KINDS)
        raise SpecError(
            f"{path}: key `kind`: got {kind!r}; allowed: {allowed} "
            "(or a Pulumi stack file with a top-level `config:`)"
        )
    return _validate(path, JOB_KINDS[kind], data, prefix=())


def load_cluster(path: str | Path) -> ClusterSpec:
    """Load the cluster declaration of a Pulumi stack config file."""
    path = Path(path)
    return load_cluster_from_data(path, _read_yaml(path))


def load_job(path: str | Path) -> Job:
    """Load a job file; a stack file here is an error."""
    spec = load_spec(path)
    if isinstance(spec, ClusterSpec):
        raise SpecError(f"{path}: is a stack config, not a job file (kind: {' | '.join(JOB_KINDS)})")
    return spec


def load_pipeline_job(path: str | Path) -> PipelineJob:
    """Load a job file that must be a pipeline job."""
    spec = load_job(path)
    if not isinstance(spec, PipelineJob):
        raise SpecError(f"{path}: key `kind`: expected pipeline, got {spec.kind}")
    return spec


def load_train_job(path: str | Path) -> TrainJob:
    """Load a job file that must be a training job."""
    spec = load_job(path)
    if not isinstance(spec, TrainJob):
        raise SpecError(f"{path}: key `kind`: expected train, got {spec.kind}")
    return spec


def load_cluster_from_data(path: Path, data: dict[str, Any]) -> ClusterSpec:
    config = data.get("config")
    if not isinstance(config, dict) or CLUSTER_KEY not in config:
        raise SpecError(f"{path}: key `config.{CLUSTER_KEY}`: missing; declare the cluster there")
    unknown = sorted(k for k in config if k.startswith("strata:") and k not in STACK_KEYS)
    if unknown:
        raise SpecError(f"{path}: key `config.{unknown[0]}`: unknown; allowed: {', '.join(STACK_KEYS)}")
    spec = _validate(path, ClusterSpec, config[CLUSTER_KEY], prefix=("config", CLUSTER_KEY))
    return typing.cast(ClusterSpec, spec)


def _read_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _validate(path: Path, model: type[BaseModel], data: Any, prefix: tuple[str, ...]) -> Spec:
    try:
        return typing.cast(Spec, model.model_validate(data))
    except ValidationError as exc:
        lines = [_describe(path, model, err, prefix) for err in exc.errors()]
        raise SpecError("\n".join(lines)) from None


def _describe(path: Path, model: type[BaseModel], err: Any, prefix: tuple[str, ...]) -> str:
    loc = tuple(str(p) for p in err["loc"])
    key = ".".join(prefix + loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(_fields_at(model, loc[:-1]))
        return f"{path}: key `{key}`: unknown key; allowed here: {allowed}"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("missing", "value_error"):
        message += f" (got {err.get('input')!r})"
    return f"{path}: key `{key}`: {message}"


def _fields_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """Field names of the nested model at `loc`, for 'allowed keys' hints."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = field.annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []
