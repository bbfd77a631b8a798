"""The one contract of outputs that every stack exports, and that `strata up` reads back.

Keys: `inventory` (an Ansible inventory: groups ray_head, ray_worker and, under Slurm,
slurm_controller and slurm_compute, with private addresses and the access method),
`ray_address`, `ray_dashboard`, `ray_client` (private addresses), `tunnel_command` (how
to reach the dashboard from a laptop), `mounts` (shared storage) and `hourly_usd` (the
accelerator nodes at the catalog's on-demand price; None where no price is public).
The functions here are pure, so the contract is tested without Pulumi; `static_outputs`
gives a static stack's outputs from its hand-written inventory, for the Pulumi program
and for `strata up` alike.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from strata.errors import SpecError
from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog
from strata.yaml_loader import load_yaml

AccessMethod = Literal["ssm", "iap", "ssh", "kubectl"]
OUTPUT_KEYS = (
    "inventory",
    "ray_address",
    "ray_dashboard",
    "ray_client",
    "tunnel_command",
    "mounts",
    "hourly_usd",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAddress:
    """One node as Ansible reaches it: its inventory name, private address and tunnel target."""

    name: str
    private_ip: str
    target: str  # SSM: the instance id; IAP: the instance name; ssh: the address
    head: bool = False
    via_head: bool = False  # reached by SSH through the head (TPU hosts have no IAP target)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessInfo:
    """How to reach the nodes; region/zone/project name the tunnel's endpoint."""

    method: AccessMethod
    user: str = "ubuntu"
    region: str | None = None
    zone: str | None = None
    project: str | None = None
    namespace: str | None = None
    service: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def proxy_command(access: AccessInfo) -> str | None:
    """The SSH ProxyCommand that tunnels Ansible's SSH through SSM or IAP (None: direct SSH)."""
    if access.method == "ssm":
        return (
            "aws ssm start-session --target %h --document-name AWS-StartSSHSession "
            f"--parameters portNumber=%p --region {access.region}"
        )
    if access.method == "iap":
        return (
            f"gcloud compute start-iap-tunnel %h %p --listen-on-stdin --zone {access.zone} "
            f"--project {access.project}"
        )
    return None


# Stack storage kinds as the common role mounts them (s3 has no FUSE client role yet).
MOUNT_FSTYPES = {"lustre": "lustre", "nfs": "nfs", "filestore": "nfs", "gcs": "gcsfuse"}


def common_mounts(mounts: list[dict[str, str]]) -> list[dict[str, str]]:
    """The stack's mounts in the form of the common role's `common_mounts`."""
    return [
        {
            "src": m["source"].removeprefix("gs://"),
            "path": m["mount_point"],
            "fstype": MOUNT_FSTYPES[m["kind"]],
        }
        for m in mounts
        if m["kind"] in MOUNT_FSTYPES and m["source"]
    ]


def ansible_inventory(
    nodes: list[NodeAddress], access: AccessInfo, *, slurm: bool, mounts: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """An Ansible inventory (the YAML structure) for the nodes, head first."""
    proxy = proxy_command(access)
    heads = [n for n in nodes if n.head]
    if len(heads) != 1:
        raise ValueError(f"a cluster has exactly one head node, got {len(heads)}")
    head = heads[0]

    def host_vars(node: NodeAddress) -> dict[str, Any]:
        values: dict[str, Any] = {
            "ansible_host": node.target,
            "ansible_user": access.user,
            "ray_node_ip": node.private_ip,
        }
        hop = proxy
        if node.via_head:
            # The outer ssh expands %h/%p everywhere, so the inner hop names the head literally.
            inner = proxy.replace("%h", head.target).replace("%p", "22") if proxy else None
            through = f"ssh -o ProxyCommand={shlex.quote(inner)}" if inner else "ssh"
            hop = f"{through} -W %h:%p {access.user}@{head.target}"
        if hop:
            values["ansible_ssh_common_args"] = f"-o ProxyCommand={shlex.quote(hop)}"
        return values

    workers = {n.name: host_vars(n) for n in nodes if not n.head}
    children: dict[str, Any] = {
        "ray_head": {"hosts": {head.name: host_vars(head)}},
        "ray_worker": {"hosts": workers},
    }
    if slurm:
        children["slurm_controller"] = {"hosts": {head.name: None}}
        children["slurm_compute"] = {"hosts": dict.fromkeys(workers)}
    return {"all": {"vars": {"common_mounts": common_mounts(mounts or [])}, "children": children}}


def tunnel_command(head: NodeAddress, access: AccessInfo, port: int) -> str:
    """A command that forwards the Ray dashboard (or any head port) to localhost:port."""
    if access.method == "ssm":
        return (
            f"aws ssm start-session --target {head.target} --document-name AWS-StartPortForwardingSession "
            f"--parameters portNumber={port},localPortNumber={port} --region {access.region}"
        )
    if access.method == "iap":
        return (
            f"gcloud compute start-iap-tunnel {head.target} {port} --local-host-port=localhost:{port} "
            f"--zone {access.zone} --project {access.project}"
        )
    if access.method == "kubectl":
        return f"kubectl -n {access.namespace} port-forward service/{access.service} {port}:{port}"
    return f"ssh -N -L {port}:{head.private_ip}:{port} {access.user}@{head.target}"


def hourly_usd(spec: ClusterSpec) -> float | None:
    """Accelerator nodes at the catalog's on-demand price (None where the catalog has no price)."""
    price = load_catalog().get(spec.instance_type).usd_per_hour
    return None if price is None else round(price * spec.node_count, 2)


def stack_outputs(
    spec: ClusterSpec, nodes: list[NodeAddress], access: AccessInfo, mounts: list[dict[str, str]]
) -> dict[str, Any]:
    """Every output of the contract, from resolved node addresses."""
    (head,) = [n for n in nodes if n.head]
    ray = spec.ray
    return {
        "inventory": ansible_inventory(nodes, access, slurm=spec.scheduler == "slurm", mounts=mounts),
        "ray_address": f"{head.private_ip}:{ray.gcs_port}",
        "ray_dashboard": f"http://{head.private_ip}:{ray.dashboard_port}",
        "ray_client": f"ray://{head.private_ip}:{ray.client_port}",
        "tunnel_command": tunnel_command(head, access, ray.dashboard_port),
        "mounts": mounts,
        "hourly_usd": hourly_usd(spec),
    }


def kubernetes_outputs(spec: ClusterSpec, *, service: str, namespace: str, claim: str) -> dict[str, Any]:
    """The contract for Ray on Kubernetes: KubeRay configures the pods, so Ansible gets no hosts."""
    ray = spec.ray
    host = f"{service}.{namespace}.svc.cluster.local"
    access = AccessInfo(method="kubectl", namespace=namespace, service=service)
    return {
        "inventory": {"all": {"children": {"ray_head": {"hosts": {}}, "ray_worker": {"hosts": {}}}}},
        "ray_address": f"{host}:{ray.gcs_port}",
        "ray_dashboard": f"http://{host}:{ray.dashboard_port}",
        "ray_client": f"ray://{host}:{ray.client_port}",
        "tunnel_command": tunnel_command(
            NodeAddress(name=service, private_ip=host, target=service, head=True), access, ray.dashboard_port
        ),
        "mounts": [
            {"kind": "pvc", "source": f"{namespace}/{claim}", "mount_point": spec.storage.mount_point}
        ],
        "hourly_usd": hourly_usd(spec),
    }


def read_inventory(path: Path) -> dict[str, Any]:
    """A hand-written Ansible inventory (YAML); SpecError if it is not a mapping."""
    inventory = load_yaml(path)
    if not isinstance(inventory, dict):
        raise SpecError(f"{path}: not an Ansible inventory (expected a mapping)")
    return inventory


def inventory_hosts(inventory: dict[str, Any], *, source: str) -> list[tuple[str, dict[str, Any], bool]]:
    """(host, host vars, is head) for the ray_head and ray_worker groups of an inventory."""
    children = (inventory.get("all") or {}).get("children") or {}
    found = []
    for group, head in (("ray_head", True), ("ray_worker", False)):
        for host, values in ((children.get(group) or {}).get("hosts") or {}).items():
            if "ray_node_ip" not in (values or {}):
                raise SpecError(
                    f"{source}: host {host!r} in group {group} needs `ray_node_ip` (its private address)"
                )
            found.append((host, dict(values), head))
    if sum(head for _, _, head in found) != 1:
        raise SpecError(f"{source}: group ray_head must hold exactly one host")
    return found


def static_outputs(spec: ClusterSpec, inventory: dict[str, Any]) -> dict[str, Any]:
    """The contract for declared hosts; the inventory output is the hand-written one."""
    hosts = inventory_hosts(inventory, source=spec.inventory or "inventory")
    nodes = [
        NodeAddress(
            name=host, private_ip=values["ray_node_ip"], target=values.get("ansible_host", host), head=head
        )
        for host, values, head in hosts
    ]
    user = next(values.get("ansible_user", "root") for _, values, head in hosts if head)
    mounts = []
    if spec.storage.kind == "nfs":
        mounts.append({"kind": "nfs", "source": "", "mount_point": spec.storage.mount_point})
    return {**stack_outputs(spec, nodes, AccessInfo(method="ssh", user=user), mounts), "inventory": inventory}
