"""Pulumi's mocks for every stack test: resources are recorded, nothing reaches a cloud.

Mocks are process-global, so they are set once here; `run_program` returns what one
program declared and the outputs it resolved to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass
class Declared:
    type: str
    name: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    """Give each resource an id and plausible computed outputs; record what was declared."""

    def __init__(self) -> None:
        self.declared: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.declared.append(Declared(args.typ, args.name, dict(args.inputs)))
        number = len(self.declared)
        outputs = dict(args.inputs)
        if args.typ == "aws:ec2/instance:Instance":
            outputs["privateIp"] = f"10.0.{number // 256}.{number % 256}"
        if args.typ == "gcp:compute/instance:Instance":
            outputs["networkInterfaces"] = [
                {**nic, "networkIp": f"10.0.0.{number}"} for nic in outputs.get("networkInterfaces", [])
            ]
        if args.typ == "aws:fsx/lustreFileSystem:LustreFileSystem":
            outputs.update(dnsName=f"fs-{number}.fsx.example.internal", mountName="abcdefgh")
        if args.typ == "gcp:filestore/instance:Instance":
            outputs["networks"] = [
                {**net, "ipAddresses": ["10.0.9.2"]} for net in outputs.get("networks", [])
            ]
        if args.typ == "gcp:tpu/v2Vm:V2Vm":
            outputs["networkEndpoints"] = [{"ipAddress": f"10.1.0.{number}"}]
        if args.typ == "aws:iam/instanceProfile:InstanceProfile":
            outputs["arn"] = f"arn:aws:iam::123456789012:instance-profile/{args.name}"
        outputs.setdefault("name", args.name)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0123456789abcdef0", "architecture": "x86_64"}
        return {}


MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project="strata", stack="test", preview=False)


@dataclass
class Program:
    """What one program declared, and the outputs contract it resolved to."""

    resources: list[Declared]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Declared:
        (resource,) = self.of_type(typ)
        return resource


def run_program(build: Callable[[], Any]) -> Program:
    """Run `build` (which returns a cluster component) under the mocks until everything settles."""
    start = len(MOCKS.declared)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any] | None:
        built = build()
        return built.outputs.apply(outputs.update) if hasattr(built, "outputs") else None

    program()
    resources = MOCKS.declared[start:]
    del MOCKS.declared[start:]
    return Program(resources, outputs)


def policy_violations(resources: list[Declared]) -> dict[str, list[str]]:
    """Run Strata's policy pack over declared resources, as the Pulumi engine would."""
    from pulumi_policy import (
        PolicyCustomTimeouts,
        PolicyResource,
        PolicyResourceOptions,
        ResourceValidationArgs,
        ResourceValidationPolicy,
        StackValidationArgs,
    )

    from strata.stacks.policies import build_policies

    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    violations: dict[str, list[str]] = {}
    for policy in build_policies():
        found: list[str] = []

        def report(message: str, urn: str | None = None, found: list[str] = found) -> None:
            found.append(message)

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.type, r.inputs, f"urn:{r.name}", r.name, opts, None)
                policy.validate(args, report)  # type: ignore[arg-type]
        else:
            stack = [
                PolicyResource(r.type, r.inputs, f"urn:{r.name}", r.name, opts, None, None, [], {})
                for r in resources
            ]
            policy.validate(StackValidationArgs(stack), report)  # type: ignore[arg-type]
        if found:
            violations[policy.name] = found
    return violations
