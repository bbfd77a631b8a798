"""The cluster declaration: what `strata up` provisions and configures.

It lives in a Pulumi stack config file (stacks/Pulumi.<stack>.yaml) under the key
`strata:cluster`, so Pulumi and Strata read one file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section
from strata.spec.catalog import TpuTopology, load_catalog, load_tpu_topologies, unknown_instance_message
from strata.spec.cidrs import open_to_internet_message
from strata.spec.cloud import HEAD_DEFAULTS, AccessSpec, HeadSpec, KubernetesSpec, TpuSpec
from strata.yaml_loader import load_yaml

Provider = Literal["aws", "gcp", "kubernetes", "static"]
CATALOG_PROVIDERS: dict[str, tuple[str, ...]] = {
    "aws": ("aws",),
    "gcp": ("gcp", "gcp-tpu"),
    "kubernetes": ("aws", "gcp", "static"),
    "static": ("static", "aws", "gcp"),
}


class StorageSpec(Section):
    """Shared storage for data, shards and checkpoints."""

    kind: Literal["none", "local", "nfs", "lustre", "filestore", "gcs", "s3"] = Field(
        "local", description="Storage service; `local` uses each node's own disk."
    )
    mount_point: str = Field("/data", description="Where nodes mount the shared storage.")
    size_gib: int = Field(1200, ge=1, description="Capacity of a provisioned file system, in GiB.")
    throughput_mb_s_per_tib: Literal[125, 250, 500, 1000] = Field(
        250, description="FSx for Lustre PERSISTENT_2 throughput per TiB."
    )
    bucket: str | None = Field(None, description="Object-storage bucket linked to the file system.")


class NetworkSpec(Section):
    """Network layout and who may reach the cluster."""

    vpc_cidr: str = Field("10.0.0.0/16", description="Address range of the cluster network.")
    allowed_ingress_cidrs: list[str] = Field(
        default_factory=list,
        description="Extra CIDRs allowed to reach the nodes (default: none; use SSM/IAP/SSH tunnels).",
    )
    efa: bool = Field(True, description="Attach every EFA interface the instance type has (AWS).")

    @field_validator("vpc_cidr")
    @classmethod
    def _valid_cidr(cls, value: str) -> str:
        ipaddress.ip_network(value)
        return value

    @field_validator("allowed_ingress_cidrs")
    @classmethod
    def _no_open_internet(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr)
        opening = open_to_internet_message(value)
        if opening:
            raise ValueError(
                f"{opening}: that opens the cluster to the whole internet; "
                "name your own address ranges or reach the cluster through a tunnel"
            )
        return value


class CapacitySpec(Section):
    """How the nodes are bought."""

    type: Literal["on-demand", "spot", "reserved", "capacity-block"] = Field(
        "on-demand", description="Purchase option."
    )
    reservation_id: str | None = Field(
        None, description="Capacity reservation or Capacity Block id (reserved, capacity-block)."
    )

    @model_validator(mode="after")
    def _reservation_needs_id(self) -> CapacitySpec:
        if self.type in ("reserved", "capacity-block") and not self.reservation_id:
            raise ValueError(f"capacity type {self.type!r} needs `reservation_id`")
        return self


class RayPorts(Section):
    """Ray head ports. They are bound to private or loopback addresses only."""

    gcs_port: int = Field(6379, ge=1024, le=65535, description="GCS (cluster address) port.")
    dashboard_port: int = Field(8265, ge=1024, le=65535, description="Dashboard and job API port.")
    client_port: int = Field(10001, ge=1024, le=65535, description="Ray client port.")
    state_dir: str = Field(
        "/tmp/strata-ray",
        description="Per-node directory for Ray's pid, log, token and temp files (keep it short).",
    )
    object_store_mib: int = Field(512, ge=64, description="Object store size per node, in MiB.")
    executable: str | None = Field(
        None,
        description="Path of `ray` on the nodes; default: the `ray` of the environment running `strata up` "
        "(the container image has /opt/venv/bin/ray).",
    )


class EnvironmentSpec(Section):
    """Strata's locked environment installed on bare nodes (Ansible role `strata_env`)."""

    install: bool = Field(
        False,
        description="Install Strata and its lock (CUDA on GPU nodes, JAX on TPU VMs, CPU elsewhere) "
        "into a virtual environment on every node; Ray and the jobs run from it.",
    )
    path: str = Field(
        "/opt/strata", description="Node directory of the environment (venv/, locks/, wheels/)."
    )
    python: str = Field("python3", description="The nodes' Python (3.11 or newer) the venv is made from.")
    wheelhouse: str | None = Field(
        None,
        description="A directory of wheels the nodes can read (shared storage): nodes then install "
        "from it alone, with no package index (`pip wheel -w DIR -c locks/cpu.txt .` builds one).",
    )
    compile: bool = Field(
        True,
        description="Byte-compile the packages at install (pip's default); false installs about "
        "twice as fast, and each module compiles when first imported instead.",
    )


class ClusterSpec(Section):
    """A cluster: where it runs, what it is made of, and how it is scheduled."""

    provider: Provider = Field(description="Where the cluster runs.")
    region: str | None = Field(None, description="Cloud region (aws, gcp).")
    zone: str | None = Field(None, description="Cloud zone (gcp; aws optional).")
    project: str | None = Field(None, description="Cloud project (gcp).")
    instance_type: str = Field(description="Instance or slice type, a row of the catalog.")
    node_count: int = Field(description="Number of nodes (TPU: slices).")
    disk_gib: int = Field(
        200,
        ge=30,
        description="Boot disk of each of the node_count nodes, in GiB (encrypted; aws and gcp VMs, "
        "TPU slices keep their own); the head's is head.disk_gib.",
    )
    scheduler: Literal["slurm", "kubernetes", "ray"] = Field(
        "ray", description="Workload manager under the Ray cluster."
    )
    inventory: str | None = Field(
        None, description="Hand-written Ansible inventory (static provider), relative to the repo."
    )
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Shared storage.")
    network: NetworkSpec = Field(default_factory=NetworkSpec, description="Network.")
    capacity: CapacitySpec = Field(default_factory=CapacitySpec, description="Purchase option.")
    ray: RayPorts = Field(default_factory=RayPorts, description="Ray head settings.")
    environment: EnvironmentSpec = Field(
        default_factory=EnvironmentSpec, description="Strata's environment on bare nodes."
    )
    image: str | None = Field(
        None,
        description="Machine image of the nodes (AMI id on aws, image or family on gcp); "
        "default Ubuntu 24.04. Build one with images/node.pkr.hcl.",
    )
    head: HeadSpec = Field(default_factory=HeadSpec, description="Head/login node (aws, gcp).")
    access: AccessSpec = Field(default_factory=AccessSpec, description="How nodes are reached.")
    tpu: TpuSpec = Field(default_factory=TpuSpec, description="TPU slices (gcp TPU types).")
    kubernetes: KubernetesSpec = Field(
        default_factory=KubernetesSpec, description="Ray on Kubernetes (provider kubernetes)."
    )

    @property
    def is_tpu(self) -> bool:
        return load_catalog().get(self.instance_type).provider == "gcp-tpu"

    @property
    def head_instance_type(self) -> str:
        return self.head.instance_type or HEAD_DEFAULTS.get(self.provider, "")

    def tpu_topology(self) -> TpuTopology:
        """The slice shape: the declared topology, or the one matching the type's chip count."""
        row = load_catalog().get(self.instance_type)
        shapes = [t for t in load_tpu_topologies() if t.accelerator == row.accelerator]
        wanted = self.tpu.topology
        matches = [
            t for t in shapes if (t.topology == wanted if wanted else t.chips == row.accelerators_per_node)
        ]
        if not matches:
            allowed = ", ".join(f"{t.topology} ({t.chips} chips)" for t in shapes)
            raise ValueError(
                f"tpu.topology {wanted!r} is not a {row.accelerator} slice shape; allowed: {allowed}"
            )
        (shape,) = matches
        if shape.chips != row.accelerators_per_node:
            raise ValueError(
                f"tpu.topology {shape.topology} has {shape.chips} chips, {self.instance_type} has "
                f"{row.accelerators_per_node}; pick the instance type of that size or its topology"
            )
        return shape

    @field_validator("node_count")
    @classmethod
    def _positive_nodes(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"node_count must be at least 1, got {value}")
        return value

    @field_validator("instance_type")
    @classmethod
    def _known_instance(cls, value: str) -> str:
        catalog = load_catalog()
        if value not in catalog:
            raise ValueError(unknown_instance_message(value, catalog.names()))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ClusterSpec:
        row = load_catalog().get(self.instance_type)
        allowed = CATALOG_PROVIDERS[self.provider]
        if row.provider not in allowed:
            raise ValueError(
                f"instance_type {self.instance_type!r} is a {row.provider} type; "
                f"provider {self.provider!r} takes {', '.join(allowed)} types"
            )
        if self.provider in ("aws", "gcp") and not self.region:
            raise ValueError(f"provider {self.provider!r} needs `region`")
        if self.provider == "gcp" and not (self.project and self.zone):
            raise ValueError("provider 'gcp' needs `project` and `zone`")
        if self.provider == "static":
            if not self.inventory:
                raise ValueError("provider 'static' needs `inventory`, a hand-written Ansible inventory")
            if not Path(self.inventory).is_file():
                raise ValueError(
                    f"inventory {self.inventory!r} does not exist (paths are relative to the repo root)"
                )
            load_yaml(self.inventory)  # SpecError on a duplicate key, before Ansible reads it
        if self.scheduler == "kubernetes" and self.provider != "kubernetes":
            raise ValueError("scheduler 'kubernetes' needs provider 'kubernetes'")
        self._check_storage()
        self._check_disks()
        if self.is_tpu:
            self.tpu_topology()
        if self.provider == "kubernetes" and not self.kubernetes.image:
            raise ValueError(
                "provider 'kubernetes' needs `kubernetes.image` (build images/Dockerfile and push it)"
            )
        if self.environment.install and (self.ray.executable or self.provider == "kubernetes"):
            raise ValueError(
                "environment.install puts Ray in environment.path/venv: drop `ray.executable`, which "
                "names an environment the nodes already have"
                if self.ray.executable
                else "environment.install is for hosts Ansible configures; on Kubernetes the pods "
                "run `kubernetes.image`"
            )
        if self.capacity.type == "capacity-block" and self.provider != "aws":
            raise ValueError("capacity type 'capacity-block' is an AWS purchase option")
        return self

    def _check_disks(self) -> None:
        """`head.disk_gib` once sized every node's boot disk; a stack that sets it alone may rely
        on that, so it must say what the other nodes get."""
        if (
            self.provider in ("aws", "gcp")
            and not self.is_tpu
            and "disk_gib" in self.head.model_fields_set
            and "disk_gib" not in self.model_fields_set
        ):
            raise ValueError(
                f"head.disk_gib ({self.head.disk_gib}) sizes the head node only; the boot disk of the "
                f"{self.node_count} other node(s) is now `disk_gib` (default 200): set it too, e.g. "
                f"`disk_gib: {self.head.disk_gib}` for the size head.disk_gib used to give them"
            )

    def _check_storage(self) -> None:
        kinds = {"aws": ("none", "local", "lustre", "s3"), "gcp": ("none", "local", "filestore", "gcs")}
        allowed = kinds.get(self.provider)
        if allowed and self.storage.kind not in allowed:
            raise ValueError(
                f"storage.kind {self.storage.kind!r} is not available on {self.provider}; "
                f"allowed: {', '.join(allowed)}"
            )
        size = self.storage.size_gib
        if self.storage.kind == "lustre" and not (size == 1200 or size % 2400 == 0):
            raise ValueError(
                f"storage.size_gib {size}: FSx for Lustre PERSISTENT_2 takes 1200 or a multiple of 2400 GiB"
            )
        if self.storage.kind in ("s3", "gcs") and not self.storage.bucket:
            raise ValueError(f"storage.kind {self.storage.kind!r} needs `storage.bucket`")
