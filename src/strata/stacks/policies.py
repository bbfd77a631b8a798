"""Strata's policy pack: rules every stack must keep, checked by `pulumi up --policy-pack`.

The rules are plain functions of a resource's type and its (camelCase) properties, so
the tests run them over a mocked stack; `stacks/policy/__main__.py` wraps them in a
PolicyPack (constructing one starts a server, so it is built only there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from strata.spec.catalog import load_catalog

Props = Mapping[str, Any]
# SSH and Ray's GCS, dashboard/job API and client ports.
PROTECTED_PORTS = (22, 6379, 8265, 10001)
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"


def _is_open_to_internet(cidrs: Iterable[str]) -> bool:
    return any(ipaddress.ip_network(cidr).prefixlen == 0 for cidr in cidrs)


def _covers_protected_port(protocol: str, from_port: float, to_port: float) -> bool:
    if str(protocol) in ("-1", "all"):
        return True
    return any(from_port <= port <= to_port for port in PROTECTED_PORTS)


def _gcp_rule_covers_protected_port(allow: Props) -> bool:
    if allow.get("protocol") in ("all",):
        return True
    ports = allow.get("ports") or []
    if not ports:
        return True  # a protocol without ports allows every port
    for item in ports:
        low, _, high = str(item).partition("-")
        if _covers_protected_port("tcp", float(low), float(high or low)):
            return True
    return False


def check_no_public_admin_ingress(resource_type: str, props: Props) -> list[str]:
    """No ingress from 0.0.0.0/0 or ::/0 to SSH or Ray ports."""
    rules: list[Props] = []
    if resource_type == "aws:ec2/securityGroup:SecurityGroup":
        rules = list(props.get("ingress") or [])
    elif resource_type == "aws:ec2/securityGroupRule:SecurityGroupRule" and props.get("type") == "ingress":
        rules = [props]
    elif resource_type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        rules = [{**props, "cidrBlocks": [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]}]
    elif resource_type == "gcp:compute/firewall:Firewall" and props.get("direction", "INGRESS") == "INGRESS":
        if _is_open_to_internet(props.get("sourceRanges") or []) and any(
            _gcp_rule_covers_protected_port(allow) for allow in props.get("allows") or []
        ):
            return ["firewall allows 0.0.0.0/0 to SSH or Ray ports; reach the cluster through IAP"]
        return []
    violations = []
    for rule in rules:
        cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
        if _is_open_to_internet(cidrs) and _covers_protected_port(
            rule.get("protocol", "-1"), rule.get("fromPort", 0), rule.get("toPort", 65535)
        ):
            violations.append(
                f"ingress from {', '.join(cidrs)} reaches SSH or Ray ports {PROTECTED_PORTS}; use SSM or a tunnel"
            )
    return violations


def check_imdsv2(resource_type: str, props: Props) -> list[str]:
    """Instances and launch templates require IMDSv2 tokens."""
    if resource_type == INSTANCE and props.get("launchTemplate"):
        return []  # the launch template carries the setting (and is checked itself)
    if resource_type in (INSTANCE, LAUNCH_TEMPLATE):
        tokens = (props.get("metadataOptions") or {}).get("httpTokens")
        if tokens != "required":
            return [f"metadataOptions.httpTokens is {tokens!r}; set it to 'required' (IMDSv2)"]
    return []


def check_encryption_at_rest(resource_type: str, props: Props) -> list[str]:
    """EBS volumes of instances, launch templates and standalone volumes are encrypted."""
    if resource_type == INSTANCE and not props.get("launchTemplate"):
        if not (props.get("rootBlockDevice") or {}).get("encrypted"):
            return ["rootBlockDevice.encrypted is not true"]
    elif resource_type == LAUNCH_TEMPLATE:
        unencrypted = [
            m.get("deviceName")
            for m in props.get("blockDeviceMappings") or []
            if str((m.get("ebs") or {}).get("encrypted")).lower() != "true"
        ]
        if unencrypted or not props.get("blockDeviceMappings"):
            return [f"block devices {unencrypted or ['(root, default)']} are not encrypted"]
    elif resource_type == "aws:ebs/volume:Volume" and not props.get("encrypted"):
        return ["EBS volume is not encrypted"]
    return []


def check_efa_count(resource_type: str, props: Props) -> list[str]:
    """A GPU launch template attaches exactly the EFA interfaces the catalog lists for its type."""
    if resource_type != LAUNCH_TEMPLATE:
        return []
    catalog = load_catalog()
    instance_type = props.get("instanceType")
    if instance_type not in catalog or catalog.get(instance_type).efa_count == 0:
        return []
    interfaces = props.get("networkInterfaces") or []
    efa = [i for i in interfaces if i.get("interfaceType") in ("efa", "efa-only")]
    expected = catalog.get(instance_type).efa_count
    if len(efa) != expected:
        return [
            f"{instance_type} has {expected} EFA interfaces in the catalog; the template attaches {len(efa)}"
        ]
    if efa[0].get("interfaceType") != "efa" or any(i.get("interfaceType") != "efa-only" for i in efa[1:]):
        return ["the first EFA interface must be 'efa' and the others 'efa-only'"]
    return []


def _is_gpu_type(instance_type: object) -> bool:
    catalog = load_catalog()
    return isinstance(instance_type, str) and instance_type in catalog and catalog.get(instance_type).is_gpu


def check_placement(resources: list[tuple[str, Props]]) -> list[str]:
    """Two or more GPU nodes share a cluster placement group (or a capacity reservation)."""
    templates = [p for t, p in resources if t == LAUNCH_TEMPLATE and _is_gpu_type(p.get("instanceType"))]
    template_nodes = [p for t, p in resources if t == INSTANCE and p.get("launchTemplate")]
    direct = [p for t, p in resources if t == INSTANCE and _is_gpu_type(p.get("instanceType"))]
    gcp_nodes = [
        p for t, p in resources if t == "gcp:compute/instance:Instance" and _is_gpu_type(p.get("machineType"))
    ]
    violations = []
    if len(template_nodes) + len(direct) >= 2:
        for template in templates:
            if not (template.get("placement") or {}).get("groupName") and not template.get(
                "capacityReservationSpecification"
            ):
                violations.append("GPU launch template has no placement group and no capacity reservation")
        violations += ["GPU instance has no placement group" for p in direct if not p.get("placementGroup")]
    if len(gcp_nodes) >= 2 and any(not p.get("resourcePolicies") for p in gcp_nodes):
        violations.append("GPU instances have no compact placement policy")
    return violations


RESOURCE_RULES: dict[str, tuple[str, Callable[[str, Props], list[str]]]] = {
    "no-public-admin-ingress": ("No 0.0.0.0/0 ingress to SSH or Ray ports.", check_no_public_admin_ingress),
    "imdsv2-required": ("EC2 instances require IMDSv2.", check_imdsv2),
    "encryption-at-rest": ("Block storage is encrypted at rest.", check_encryption_at_rest),
    "efa-count-matches-catalog": ("GPU nodes attach every EFA interface of their type.", check_efa_count),
}


def _resource_policy(
    name: str, description: str, rule: Callable[[str, Props], list[str]]
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for violation in rule(args.resource_type, args.props):
            report(f"{args.name}: {violation}", None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def _placement_policy() -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for violation in check_placement([(r.resource_type, r.props) for r in args.resources]):
            report(violation, None)

    return StackValidationPolicy(
        name="placement-group-on-multi-node-gpu",
        description="Multi-node GPU stacks use a cluster placement group.",
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every Strata policy, ready for a PolicyPack or for direct validation in tests."""
    policies: list[ResourceValidationPolicy | StackValidationPolicy] = [
        _resource_policy(name, description, rule) for name, (description, rule) in RESOURCE_RULES.items()
    ]
    policies.append(_placement_policy())
    return policies
