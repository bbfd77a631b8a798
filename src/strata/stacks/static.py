"""StaticCluster: on-prem machines or this one. No resources; the outputs come from the inventory."""

from __future__ import annotations

from typing import Any

import pulumi

from strata.spec import ClusterSpec
from strata.stacks.base import StrataCluster
from strata.stacks.outputs import static_outputs


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
        self.outputs = pulumi.Output.from_input(static_outputs(spec, inventory))
        self.register_outputs({"outputs": self.outputs})
