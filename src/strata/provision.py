"""`pulumi up` and its outputs through Pulumi's Automation API, for `strata up` on cloud stacks.

The program is stacks/__main__.py; the policy pack in stacks/policy runs with it, so a
stack that breaks a policy is refused before anything is created. The exported
inventory is written to .strata/<stack>/inventory.yml for Ansible.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from strata.errors import ClusterError

logger = logging.getLogger(__name__)
STACKS_DIR = Path("stacks")
POLICY_PACK = STACKS_DIR / "policy"
INSTALL_HINT = (
    "the Pulumi CLI is not installed: install it (`curl -fsSL https://get.pulumi.com | sh`, "
    "or `npm install -g pulumi`), log in (`pulumi login`), and run `strata up {stack}` again"
)


def provision(stack: str) -> dict[str, Any]:
    """Run `pulumi up` for `stack` (stacks/Pulumi.<stack>.yaml) and return its outputs."""
    from pulumi import automation as auto

    try:
        workspace_stack = auto.create_or_select_stack(stack_name=stack, work_dir=str(STACKS_DIR.resolve()))
        result = workspace_stack.up(on_output=logger.info, policy_packs=[str(POLICY_PACK.resolve())])
    except FileNotFoundError:
        raise ClusterError(INSTALL_HINT.format(stack=stack)) from None
    except auto.errors.CommandError as exc:
        raise ClusterError(f"pulumi up for stack {stack!r} failed: {exc}".replace("\n", " ")) from None
    return {key: output.value for key, output in result.outputs.items()}


def write_inventory(outputs: dict[str, Any], state: Path) -> Path:
    """Write the stack's exported Ansible inventory next to the stack's other state."""
    if "inventory" not in outputs:
        raise ClusterError("the stack exported no `inventory`; is stacks/__main__.py Strata's program?")
    path = state / "inventory.yml"
    path.write_text(yaml.safe_dump(outputs["inventory"], sort_keys=False), encoding="utf-8")
    return path
