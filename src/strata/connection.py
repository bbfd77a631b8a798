"""A stack reference, resolved once, and the connection to its Ray head.

A stack is named by its config file, stacks/Pulumi.<stack>.yaml, or by the path of one.
Its client-side state lives in .strata/<stack>/, a directory only its owner can read:
the inventory a cloud stack exported, the connection `strata up` wrote and a copy of the
Ray auth token. The connection is built from the stack outputs contract
(strata.stacks.outputs: `ray_address`, `ray_dashboard`), whether the outputs came from
`pulumi up` (cloud stacks) or from the hand-written inventory (static stacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from strata.errors import ClusterError
from strata.files import atomic_write_text

STATE_ROOT = Path(".strata")


@dataclass(frozen=True, slots=True, kw_only=True)
class StackRef:
    """A stack as the user named it, resolved: its name, config file and state directory."""

    name: str
    file: Path
    state_dir: Path

    @property
    def token_path(self) -> Path:
        """Where `strata up` keeps a copy of the cluster's Ray auth token."""
        return self.state_dir / "auth_token"

    @property
    def connection_path(self) -> Path:
        return self.state_dir / "connection.json"

    def ensure_state_dir(self) -> Path:
        """Create the state directory (mode 0700) and return it."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state_dir.chmod(0o700)
        return self.state_dir


def resolve_stack(stack: str) -> StackRef:
    """`local` → stacks/Pulumi.local.yaml; a .yaml/.yml path is the file itself."""
    path = Path(stack)
    if path.suffix in (".yaml", ".yml"):
        name, file = path.stem.removeprefix("Pulumi."), path
    else:
        name, file = stack, Path("stacks") / f"Pulumi.{stack}.yaml"
    return StackRef(name=name, file=file, state_dir=STATE_ROOT / name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How a client reaches a running cluster's Ray head, and the inventory of its hosts."""

    stack: str
    head_address: str
    gcs_address: str
    dashboard_url: str
    token_path: str
    instance_type: str
    inventory: str
    python: str  # on the nodes: the Python beside their `ray`, which runs submitted jobs


def build_connection(
    ref: StackRef, outputs: Mapping[str, Any], *, instance_type: str, inventory: Path, python: str
) -> Connection:
    """The connection from a stack's outputs (`ray_address` is host:port of the GCS)."""
    head, _, _ = str(outputs["ray_address"]).rpartition(":")
    return Connection(
        stack=ref.name,
        head_address=head,
        gcs_address=str(outputs["ray_address"]),
        dashboard_url=str(outputs["ray_dashboard"]),
        token_path=str(ref.token_path.resolve()),
        instance_type=instance_type,
        inventory=str(inventory.resolve()),
        python=python,
    )


def save_connection(ref: StackRef, connection: Connection) -> Path:
    ref.ensure_state_dir()
    atomic_write_text(ref.connection_path, json.dumps(asdict(connection), indent=2))
    return ref.connection_path


def load_connection(stack: str | StackRef) -> Connection:
    """The connection `up` wrote, or a ClusterError saying to run `strata up`."""
    ref = resolve_stack(stack) if isinstance(stack, str) else stack
    path = ref.connection_path
    if not path.is_file():
        raise ClusterError(f"cluster {ref.name!r} is not up ({path} missing); run `strata up {ref.name}`")
    try:
        return Connection(**json.loads(path.read_text(encoding="utf-8")))
    except (TypeError, ValueError) as exc:
        raise ClusterError(
            f"{path}: not a connection this Strata wrote ({exc}); run `strata up {ref.name}`"
        ) from None
