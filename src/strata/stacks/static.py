"""StaticCluster: on-prem machines or this one. No resources; the outputs come from the inventory."""

from __future__ import annotations

from typing import Any

import pulumi

from strata.errors import SpecError
from strata.spec import ClusterSpec
from strata.stacks.base import StrataCluster
from strata.stacks.outputs import AccessInfo, NodeAddress, stack_outputs


class StaticCluster(StrataCluster):
    """The declared hosts, published with the same outputs contract as the clouds.

    The inventory output is the hand-written one, as Ansible already uses it.
    """

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        inventory: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("strata:static:Cluster", name, None, opts)
        hosts = inventory_hosts(inventory, source=spec.inventory or "inventory")
        nodes = [
            NodeAddress(
                name=host,
                private_ip=values["ray_node_ip"],
                target=values.get("ansible_host", host),
                head=head,
            )
            for host, values, head in hosts
        ]
        user = next(values.get("ansible_user", "root") for _, values, head in hosts if head)
        mounts = []
        if spec.storage.kind == "nfs":
            mounts.append({"kind": "nfs", "source": "", "mount_point": spec.storage.mount_point})
        outputs = {
            **stack_outputs(spec, nodes, AccessInfo(method="ssh", user=user), mounts),
            "inventory": inventory,
        }
        self.outputs = pulumi.Output.from_input(outputs)
        self.register_outputs({"outputs": self.outputs})


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
