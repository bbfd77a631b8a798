"""What every cluster component shares: the outputs contract, resolved from Pulumi outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from strata.spec import ClusterSpec
from strata.stacks.outputs import AccessInfo, NodeAddress, stack_outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingNode:
    """A node whose address and tunnel target are still Pulumi outputs."""

    name: str
    private_ip: pulumi.Input[str]
    target: pulumi.Input[str]
    head: bool = False
    via_head: bool = False


class StrataCluster(pulumi.ComponentResource):
    """Base of the cluster components; subclasses declare resources, then call `_publish`."""

    outputs: pulumi.Output[dict[str, Any]]

    def _publish(
        self,
        spec: ClusterSpec,
        nodes: list[PendingNode],
        access: AccessInfo,
        mounts: pulumi.Input[list[dict[str, str]]],
    ) -> None:
        """Resolve the node addresses into the outputs contract and register it."""
        pairs = [pulumi.Output.all(n.private_ip, n.target) for n in nodes]

        def resolve(values: list[Any]) -> dict[str, Any]:
            *addresses, mount_list = values
            resolved = [
                NodeAddress(
                    name=n.name, private_ip=str(ip), target=str(target), head=n.head, via_head=n.via_head
                )
                for n, (ip, target) in zip(nodes, addresses, strict=True)
            ]
            return stack_outputs(spec, resolved, access, list(mount_list))

        self.outputs = pulumi.Output.all(*pairs, mounts).apply(resolve)
        self.register_outputs({"outputs": self.outputs})
