"""`strata up` and `strata down`: provision (clouds), configure the hosts, start and stop Ray.

For static hosts no Pulumi runs: the hand-written inventory goes straight to Ansible.
Cloud stacks run `pulumi up` first (strata.provision) and use the inventory it exports.
Either way the connection (strata.connection) is built from the stack's outputs and
written, with a copy of the auth token, to the stack's state directory.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strata.connection import Connection, StackRef, build_connection, resolve_stack, save_connection
from strata.errors import ClusterError, StrataError
from strata.node_environment import environment_ray, environment_vars
from strata.playbook import PLAYBOOK_DIR, run_playbook
from strata.spec import ClusterSpec, load_cluster
from strata.spec.catalog import load_catalog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpResult:
    """What `up` did: how to reach the head, and per host how many tasks changed something."""

    connection: Connection
    changed: dict[str, int]


def _gpus_per_node(spec: ClusterSpec) -> int:
    row = load_catalog().get(spec.instance_type)
    return row.accelerators_per_node if row.is_gpu else 0


def _ray_executable(spec: ClusterSpec) -> Path:
    """The `ray` the nodes run (the installed environment's, `ray.executable`, or by default
    this environment's); the Python beside it runs the health checks and the jobs' drivers."""
    if spec.environment.install:
        return environment_ray(spec)
    return Path(spec.ray.executable or Path(sys.executable).parent / "ray")


def _extravars(spec: ClusterSpec, state: str, token_copy: Path) -> dict[str, Any]:
    return {
        "slurm_gpus_per_node": _gpus_per_node(spec),
        "ray_state": state,
        "slurm_state": state,
        "ray_executable": str(_ray_executable(spec)),
        "ray_state_dir": spec.ray.state_dir,
        "ray_gcs_port": spec.ray.gcs_port,
        "ray_dashboard_port": spec.ray.dashboard_port,
        "ray_client_port": spec.ray.client_port,
        "ray_object_store_bytes": spec.ray.object_store_mib * 2**20,
        "ray_controller_token_path": str(token_copy.resolve()),
    }


def _declaration(ref: StackRef) -> ClusterSpec:
    """The cluster declaration of a stack `strata up` can configure (not Kubernetes)."""
    spec = load_cluster(ref.file)
    if spec.provider == "kubernetes":
        raise StrataError(
            f"{ref.file}: provider 'kubernetes' runs Ray through KubeRay: "
            "`pulumi up` in stacks/ creates it; there are no hosts for `strata up` to configure"
        )
    return spec


def _outputs(ref: StackRef, spec: ClusterSpec) -> tuple[dict[str, Any], Path]:
    """The stack's outputs and its inventory: from the hand-written inventory (static), or
    from `pulumi up` (clouds), whose exported inventory is written to the state directory."""
    if spec.provider == "static" and spec.inventory is not None:
        from strata.stacks.outputs import read_inventory, static_outputs

        inventory = Path(spec.inventory)
        return static_outputs(spec, read_inventory(inventory)), inventory
    from strata.provision import provision, write_inventory

    outputs = provision(ref.name)
    return outputs, write_inventory(outputs, ref.ensure_state_dir())


def _inventory(ref: StackRef, spec: ClusterSpec) -> Path:
    """The inventory of a stack `up` configured: hand-written, or the one `pulumi up` exported."""
    if spec.provider == "static" and spec.inventory is not None:
        return Path(spec.inventory)
    inventory = ref.state_dir / "inventory.yml"
    if not inventory.is_file():
        raise ClusterError(f"cluster {ref.name!r} was never brought up ({inventory} missing)")
    return inventory


def up(stack: str) -> UpResult:
    """Provision (cloud stacks), configure the hosts and start Ray on them; return how to reach the head."""
    ref = resolve_stack(stack)
    spec = _declaration(ref)
    outputs, inventory = _outputs(ref, spec)
    state = ref.ensure_state_dir()
    extravars = _extravars(spec, "started", ref.token_path) | environment_vars(spec, state / "wheel")
    stats = run_playbook(PLAYBOOK_DIR / "site.yml", inventory, extravars, state / "ansible")
    connection = build_connection(
        ref,
        outputs,
        instance_type=spec.instance_type,
        inventory=inventory,
        python=str(_ray_executable(spec).parent / "python"),
    )
    save_connection(ref, connection)
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
    ref = resolve_stack(stack)
    spec = _declaration(ref)
    inventory = _inventory(ref, spec)
    state = ref.ensure_state_dir()
    run_playbook(
        PLAYBOOK_DIR / "site.yml",
        inventory,
        _extravars(spec, "stopped", ref.token_path),
        state / "ansible",
    )
    ref.connection_path.unlink(missing_ok=True)
    ref.token_path.unlink(missing_ok=True)
    logger.info("cluster %s is down", ref.name)


DEFAULT_ALLREDUCE_FLOOR_GB_S = 0.05  # CPU nodes, and GPU types without a catalog floor


def health(stack: str, floor_gb_s: float | None = None) -> dict[str, Any]:
    """Run the health checks on every node of a running cluster; return the report per host.

    Raises ClusterError naming the failing hosts (they are drained in Slurm) after
    writing the report to .strata/<stack>/health.json.
    """
    ref = resolve_stack(stack)
    spec = _declaration(ref)
    inventory = _inventory(ref, spec)
    state = ref.ensure_state_dir()
    row = load_catalog().get(spec.instance_type)
    floor = floor_gb_s if floor_gb_s is not None else row.allreduce_floor_gb_s or DEFAULT_ALLREDUCE_FLOOR_GB_S
    ray = _ray_executable(spec)
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
