"""`strata up` and `strata down`: provision (clouds), configure the hosts, start and stop Ray.

A stack is named by its config file, stacks/Pulumi.<stack>.yaml (or a path). For
static hosts no Pulumi runs: the hand-written inventory goes straight to Ansible. Cloud
stacks run `pulumi up` first (strata.provision) and use the inventory it exports.
What a client needs to reach the cluster is written to .strata/<stack>/: the
connection (head and dashboard addresses) and a copy of the auth token, in a
directory only its owner can read.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from strata.errors import ClusterError, StrataError
from strata.playbook import PLAYBOOK_DIR, run_playbook
from strata.spec import ClusterSpec, load_cluster
from strata.spec.catalog import load_catalog
from strata.yaml_loader import load_yaml

logger = logging.getLogger(__name__)
STATE_ROOT = Path(".strata")


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How a client reaches a running cluster's Ray head."""

    stack: str
    head_address: str
    gcs_address: str
    dashboard_url: str
    token_path: str
    instance_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpResult:
    """What `up` did: how to reach the head, and per host how many tasks changed something."""

    connection: Connection
    changed: dict[str, int]


def stack_file(stack: str) -> Path:
    """stacks/Pulumi.<stack>.yaml for a name, or the path itself."""
    path = Path(stack)
    if path.suffix in (".yaml", ".yml"):
        return path
    return Path("stacks") / f"Pulumi.{stack}.yaml"


def stack_name(stack: str) -> str:
    path = Path(stack)
    return path.stem.removeprefix("Pulumi.") if path.suffix in (".yaml", ".yml") else stack


def state_dir(stack: str) -> Path:
    path = STATE_ROOT / stack_name(stack)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _gpus_per_node(spec: ClusterSpec) -> int:
    row = load_catalog().get(spec.instance_type)
    return row.accelerators_per_node if row.is_gpu else 0


def _extravars(spec: ClusterSpec, state: str, token_copy: Path) -> dict[str, Any]:
    return {
        "slurm_gpus_per_node": _gpus_per_node(spec),
        "ray_state": state,
        "slurm_state": state,
        "ray_executable": spec.ray.executable or str(Path(sys.executable).parent / "ray"),
        "ray_state_dir": spec.ray.state_dir,
        "ray_gcs_port": spec.ray.gcs_port,
        "ray_dashboard_port": spec.ray.dashboard_port,
        "ray_client_port": spec.ray.client_port,
        "ray_object_store_bytes": spec.ray.object_store_mib * 2**20,
        "ray_controller_token_path": str(token_copy.resolve()),
    }


def _head_address(inventory: Path) -> str:
    data = load_yaml(inventory) or {}
    heads = (((data.get("all") or {}).get("children") or {}).get("ray_head") or {}).get("hosts") or {}
    if not heads:
        raise ClusterError(f"{inventory}: key `all.children.ray_head.hosts`: no head host declared")
    name, host_vars = next(iter(heads.items()))
    host_vars = host_vars or {}
    return str(host_vars.get("ray_node_ip") or host_vars.get("ansible_host") or name)


def _load(stack: str, *, provision_cloud: bool) -> tuple[ClusterSpec, Path]:
    """The declaration and the inventory: hand-written (static) or exported by `pulumi up`."""
    spec = load_cluster(stack_file(stack))
    if spec.provider == "static" and spec.inventory is not None:
        return spec, Path(spec.inventory)
    if spec.provider == "kubernetes":
        raise StrataError(
            f"{stack_file(stack)}: provider 'kubernetes' runs Ray through KubeRay: "
            "`pulumi up` in stacks/ creates it; there are no hosts for `strata up` to configure"
        )
    if provision_cloud:
        from strata.provision import provision, write_inventory

        return spec, write_inventory(provision(stack_name(stack)), state_dir(stack))
    inventory = state_dir(stack) / "inventory.yml"
    if not inventory.is_file():
        raise ClusterError(f"cluster {stack_name(stack)!r} was never brought up ({inventory} missing)")
    return spec, inventory


def up(stack: str) -> UpResult:
    """Provision (cloud stacks), configure the hosts and start Ray on them; return how to reach the head."""
    spec, inventory = _load(stack, provision_cloud=True)
    state = state_dir(stack)
    token_copy = state / "auth_token"
    stats = run_playbook(
        PLAYBOOK_DIR / "site.yml", inventory, _extravars(spec, "started", token_copy), state / "ansible"
    )
    head = _head_address(inventory)
    connection = Connection(
        stack=stack_name(stack),
        head_address=head,
        gcs_address=f"{head}:{spec.ray.gcs_port}",
        dashboard_url=f"http://{head}:{spec.ray.dashboard_port}",
        token_path=str(token_copy.resolve()),
        instance_type=spec.instance_type,
    )
    (state / "connection.json").write_text(json.dumps(asdict(connection), indent=2), encoding="utf-8")
    changed = {host: counts.get("changed", 0) for host, counts in stats.items()}
    logger.info(
        "cluster %s is up (hosts ready: %s); dashboard %s",
        connection.stack,
        ", ".join(f"{host} (changed {n})" for host, n in sorted(changed.items())),
        connection.dashboard_url,
    )
    return UpResult(connection=connection, changed=changed)


def down(stack: str) -> None:
    """Stop the Ray processes `up` started (by PID) on every host."""
    spec, inventory = _load(stack, provision_cloud=False)
    state = state_dir(stack)
    run_playbook(
        PLAYBOOK_DIR / "site.yml",
        inventory,
        _extravars(spec, "stopped", state / "auth_token"),
        state / "ansible",
    )
    (state / "connection.json").unlink(missing_ok=True)
    (state / "auth_token").unlink(missing_ok=True)
    logger.info("cluster %s is down", stack_name(stack))


DEFAULT_ALLREDUCE_FLOOR_GB_S = 0.05  # CPU nodes, and GPU types without a catalog floor


def health(stack: str, floor_gb_s: float | None = None) -> dict[str, Any]:
    """Run the health checks on every node of a running cluster; return the report per host.

    Raises ClusterError naming the failing hosts (they are drained in Slurm) after
    writing the report to .strata/<stack>/health.json.
    """
    spec, inventory = _load(stack, provision_cloud=False)
    state = state_dir(stack)
    row = load_catalog().get(spec.instance_type)
    floor = floor_gb_s if floor_gb_s is not None else row.allreduce_floor_gb_s or DEFAULT_ALLREDUCE_FLOOR_GB_S
    ray = Path(spec.ray.executable or Path(sys.executable).parent / "ray")
    report = state / "health.json"
    report.unlink(missing_ok=True)
    extravars = {
        "health_python": str(ray.parent / "python"),
        "health_report": str(report.resolve()),
        "health_allreduce_floor_gb_s": floor,
        "health_expected_gpus": _gpus_per_node(spec),
    }
    try:
        run_playbook(PLAYBOOK_DIR / "health.yml", inventory, extravars, state / "ansible-health")
    finally:
        if report.is_file():
            logger.info("health report: %s", report)
    return dict(json.loads(report.read_text(encoding="utf-8")))


def load_connection(stack: str) -> Connection:
    """The connection `up` wrote, or a ClusterError saying to run `strata up`."""
    path = STATE_ROOT / stack_name(stack) / "connection.json"
    if not path.is_file():
        raise ClusterError(
            f"cluster {stack_name(stack)!r} is not up ({path} missing); run `strata up {stack}`"
        )
    return Connection(**json.loads(path.read_text(encoding="utf-8")))
