"""Pulumi components, one per target, chosen from the validated cluster declaration.

`build_cluster` is all that stacks/__main__.py calls; each component exports the same
outputs contract (strata.stacks.outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi

from strata.errors import SpecError
from strata.spec import ClusterSpec
from strata.stacks.base import StrataCluster


@dataclass(frozen=True, slots=True, kw_only=True)
class StackInputs:
    """What a component may need beyond the declaration, read by stacks/__main__.py."""

    inventory: dict[str, Any] | None = None  # static: the hand-written inventory
    ray_auth_token: pulumi.Input[str] | None = None  # kubernetes: a Pulumi secret


def _aws(name: str, spec: ClusterSpec, inputs: StackInputs) -> StrataCluster:
    from strata.stacks.aws import AwsCluster

    return AwsCluster(name, spec)


def _gcp(name: str, spec: ClusterSpec, inputs: StackInputs) -> StrataCluster:
    from strata.stacks.gcp import GcpGpuCluster

    return GcpGpuCluster(name, spec)


def _tpu(name: str, spec: ClusterSpec, inputs: StackInputs) -> StrataCluster:
    from strata.stacks.tpu import TpuCluster

    return TpuCluster(name, spec)


def _kubernetes(name: str, spec: ClusterSpec, inputs: StackInputs) -> StrataCluster:
    from strata.stacks.kubernetes import KubeRayCluster

    if inputs.ray_auth_token is None:
        raise SpecError(
            "kubernetes stacks need Ray's auth token as a secret: "
            "pulumi config set --secret strata:rayAuthToken $(openssl rand -hex 32)"
        )
    return KubeRayCluster(name, spec, inputs.ray_auth_token)


def _static(name: str, spec: ClusterSpec, inputs: StackInputs) -> StrataCluster:
    from strata.stacks.static import StaticCluster

    return StaticCluster(name, spec, inputs.inventory or {})


Builder = Callable[[str, ClusterSpec, "StackInputs"], StrataCluster]

# Imports are deferred so a stack loads only its own cloud's SDK.
STACKS: dict[str, Builder] = {
    "aws": _aws,
    "gcp": _gcp,
    "gcp-tpu": _tpu,
    "kubernetes": _kubernetes,
    "static": _static,
}


def build_cluster(name: str, spec: ClusterSpec, inputs: StackInputs | None = None) -> StrataCluster:
    """Declare the cluster's resources with the component for its provider (and accelerator)."""
    key = "gcp-tpu" if spec.provider == "gcp" and spec.is_tpu else spec.provider
    return STACKS[key](name, spec, inputs or StackInputs())


def export_outputs(cluster: StrataCluster) -> None:
    """Export every key of the outputs contract as a stack output."""
    from strata.stacks.outputs import OUTPUT_KEYS

    for key in OUTPUT_KEYS:
        pulumi.export(key, cluster.outputs.apply(lambda outputs, key=key: outputs[key]))
