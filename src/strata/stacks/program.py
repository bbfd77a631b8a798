"""The Pulumi program of stacks/: validate the stack's declaration, build its cluster, export.

Validation happens before any resource is declared, so a bad declaration creates
nothing and fails with the file, the key and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi

from strata.spec.load import CLUSTER_KEY, load_cluster_from_data
from strata.stacks import StackInputs, build_cluster, export_outputs
from strata.stacks.base import StrataCluster
from strata.stacks.outputs import read_inventory


def build_from_config(
    stack: str, cluster: Any, *, ray_auth_token: pulumi.Input[str] | None = None
) -> StrataCluster:
    """Validate `cluster` (the stack's `strata:cluster` value) and declare its resources."""
    source = Path("stacks") / f"Pulumi.{stack}.yaml"
    spec = load_cluster_from_data(source, {"config": {CLUSTER_KEY: cluster}})
    inventory = read_inventory(Path(spec.inventory)) if spec.provider == "static" and spec.inventory else None
    inputs = StackInputs(inventory=inventory, ray_auth_token=ray_auth_token)
    return build_cluster(f"strata-{stack}", spec, inputs)


def run(repo_root: Path) -> None:
    """Entry point of stacks/__main__.py (paths in declarations are relative to the repository)."""
    os.chdir(repo_root)
    config = pulumi.Config("strata")
    cluster = build_from_config(
        pulumi.get_stack(), config.require_object("cluster"), ray_auth_token=config.get_secret("rayAuthToken")
    )
    export_outputs(cluster)
