"""Sections of the cluster declaration that only cloud and Kubernetes stacks read."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from strata.spec.base import Section

HEAD_DEFAULTS = {"aws": "m7i.2xlarge", "gcp": "n2-standard-8"}
PUBLIC_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$")


class HeadSpec(Section):
    """The head/login node: Ray head, Slurm controller, the place users reach through a tunnel."""

    instance_type: str | None = Field(
        None, description="Machine type of the head node; default m7i.2xlarge (aws), n2-standard-8 (gcp)."
    )
    disk_gib: int = Field(
        200,
        ge=30,
        description="Boot disk of the head node, in GiB (encrypted); the other nodes': `disk_gib`.",
    )


class AccessSpec(Section):
    """How Ansible and users reach the nodes: never a public port; SSM (AWS) or IAP (GCP)."""

    ssh_user: str = Field("ubuntu", description="Login user of the machine image.")
    ssh_public_key: str | None = Field(
        None,
        description="OpenSSH public key Ansible logs in with (through the SSM or IAP tunnel). "
        "Only a public key belongs in a stack file.",
    )

    @field_validator("ssh_public_key")
    @classmethod
    def _public_key_only(cls, value: str | None) -> str | None:
        if value is not None and not PUBLIC_KEY.match(value.strip()):
            raise ValueError(
                "not an OpenSSH public key (ssh-ed25519 AAAA... or ssh-rsa AAAA...); "
                "never put a private key in a stack file"
            )
        return value


class TpuSpec(Section):
    """TPU VM slices (provider gcp with a TPU instance type)."""

    topology: str | None = Field(
        None,
        description="Chip topology of each slice (2D for v5e/v6e, 3D for v5p); default: the one "
        "matching the type's chip count in tpu_topologies.csv.",
    )
    runtime_version: str | None = Field(None, description="TPU software version; default per generation.")
    queued: bool = Field(
        False, description="Request the slices as one queued resource (waits for capacity; multislice)."
    )


class TolerationSpec(Section):
    """A Kubernetes toleration for the Ray pods."""

    key: str = Field(description="Taint key, e.g. nvidia.com/gpu.")
    operator: Literal["Exists", "Equal"] = Field("Exists", description="Match any value or one value.")
    value: str | None = Field(None, description="Taint value (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate; empty tolerates all."
    )


class KubernetesSpec(Section):
    """A Ray cluster on an existing Kubernetes cluster, through the KubeRay operator."""

    namespace: str = Field("strata", description="Namespace of the RayCluster and its volume claim.")
    image: str | None = Field(
        None, description="Container image of the Ray pods (build images/Dockerfile, push it, name it here)."
    )
    kuberay_version: str = Field("1.4.2", description="Version of the kuberay-operator Helm chart.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Labels the GPU worker pods must run on."
    )
    tolerations: list[TolerationSpec] = Field(
        default_factory=list, description="Taints the GPU worker pods tolerate."
    )
    storage_class: str | None = Field(None, description="Storage class of the data volume claim.")
    volume_gib: int = Field(1000, ge=1, description="Size of the shared data volume claim, in GiB.")
    head_cpus: int = Field(8, ge=1, description="CPUs of the Ray head pod.")
    head_memory_gib: int = Field(32, ge=1, description="Memory of the Ray head pod, in GiB.")
