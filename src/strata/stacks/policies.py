"""Strata's policy pack: rules every stack must keep, checked by `pulumi up --policy-pack`.

The rules are plain functions of a resource's type and its (camelCase) properties, so
the tests run them over a mocked stack; `stacks/policy/__main__.py` wraps them in a
PolicyPack (constructing one starts a server, so it is built only there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
from strata.spec.cidrs import open_to_internet_message

Props = Mapping[str, Any]
# SSH and Ray's GCS, dashboard/job API and client ports.
PROTECTED_PORTS = (22, 6379, 8265, 10001)
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"


SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
FIREWALL = "gcp:compute/firewall:Firewall"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressRule:
    """One ingress rule, reduced to what the check needs: sources, and protected ports reached."""

    cidrs: tuple[str, ...]
    ports: frozenset[int]


def _ports_reached(protocol: object, from_port: float, to_port: float) -> frozenset[int]:
    if str(protocol) in ("-1", "all"):
        return frozenset(PROTECTED_PORTS)
    return frozenset(port for port in PROTECTED_PORTS if from_port <= port <= to_port)


def _gcp_ports_reached(allow: Props) -> frozenset[int]:
    ports = allow.get("ports") or []
    if allow.get("protocol") == "all" or not ports:
        return frozenset(PROTECTED_PORTS)  # a protocol without ports allows every port
    reached: set[int] = set()
    for item in ports:
        low, _, high = str(item).partition("-")
        reached |= _ports_reached("tcp", float(low), float(high or low))
    return frozenset(reached)


def _aws_rule(rule: Props) -> IngressRule:
    cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
    cidrs += [c for c in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if c]
    protocol = rule.get("protocol", rule.get("ipProtocol", "-1"))
    ports = _ports_reached(protocol, rule.get("fromPort", 0), rule.get("toPort", 65535))
    return IngressRule(cidrs=tuple(cidrs), ports=ports)


def ingress_rules(resource_type: str, props: Props) -> list[IngressRule]:
    """The ingress rules a security group, security group rule or firewall declares."""
    if resource_type == "aws:ec2/securityGroup:SecurityGroup":
        return [_aws_rule(rule) for rule in props.get("ingress") or []]
    if (resource_type == SG_RULE and props.get("type") == "ingress") or resource_type == SG_INGRESS_RULE:
        return [_aws_rule(props)]
    if resource_type == FIREWALL and props.get("direction", "INGRESS") == "INGRESS":
        sources = tuple(props.get("sourceRanges") or [])
        return [IngressRule(cidrs=sources, ports=_gcp_ports_reached(a)) for a in props.get("allows") or []]
    return []


def public_admin_ports(rules: Iterable[IngressRule]) -> list[str]:
    """One violation per protected port whose sources, over all `rules` that reach it, are the internet.

    The CIDRs of every rule reaching a port are pooled, so an opening split into
    pieces (`0.0.0.0/1` + `128.0.0.0/1`, one rule each) is found; see strata.spec.cidrs.
    """
    rules = list(rules)
    violations = []
    for port in PROTECTED_PORTS:
        opening = open_to_internet_message(c for rule in rules if port in rule.ports for c in rule.cidrs)
        if opening:
            violations.append(
                f"ingress from {opening} reaches port {port} (SSH or Ray); use SSM, IAP or a tunnel"
            )
    return violations


def check_no_public_admin_ingress(resource_type: str, props: Props) -> list[str]:
    """No ingress from the whole internet (0.0.0.0/0, ::/0, or pieces adding up to them) to SSH or Ray ports."""
    return public_admin_ports(ingress_rules(resource_type, props))


def check_no_public_admin_ingress_across_rules(resources: list[tuple[str, Props]]) -> list[str]:
    """The same, pooled over separate rule resources that open one target.

    AWS rules are pooled by `securityGroupId`; GCP firewalls by network and target
    tags (an untagged firewall applies to every instance of its network, so it joins
    every group there). Groups a single resource already breaks are left to the
    resource rule.
    """
    groups: dict[tuple[str, ...], list[list[IngressRule]]] = {}
    untagged: dict[str, list[list[IngressRule]]] = {}
    for resource_type, props in resources:
        rules = ingress_rules(resource_type, props)
        if not rules or check_no_public_admin_ingress(resource_type, props):
            continue
        if resource_type in (SG_RULE, SG_INGRESS_RULE) and isinstance(props.get("securityGroupId"), str):
            groups.setdefault(("aws", props["securityGroupId"]), []).append(rules)
        elif resource_type == FIREWALL and isinstance(props.get("network"), str):
            tags = sorted(props.get("targetTags") or [])
            if tags:
                groups.setdefault(("gcp", props["network"], *tags), []).append(rules)
            else:
                untagged.setdefault(props["network"], []).append(rules)
    for network, rule_sets in untagged.items():
        tagged = [key for key in groups if key[:2] == ("gcp", network)]
        for key in tagged:
            groups[key] += rule_sets
        if not tagged:
            groups[("gcp", network)] = rule_sets
    violations = []
    for key, rule_sets in groups.items():
        if len(rule_sets) > 1:
            target = f"security group {key[1]}" if key[0] == "aws" else f"network {key[1]}"
            found = public_admin_ports(rule for rules in rule_sets for rule in rules)
            violations += [f"{target}: {len(rule_sets)} rules together: {v}" for v in found]
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
    "no-public-admin-ingress": (
        "No ingress from the whole internet to SSH or Ray ports.",
        check_no_public_admin_ingress,
    ),
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


STACK_RULES: dict[str, tuple[str, Callable[[list[tuple[str, Props]]], list[str]]]] = {
    "placement-group-on-multi-node-gpu": (
        "Multi-node GPU stacks use a cluster placement group.",
        check_placement,
    ),
    "no-public-admin-ingress-across-rules": (
        "Separate ingress rules to one target do not add up to the whole internet on SSH or Ray ports.",
        check_no_public_admin_ingress_across_rules,
    ),
}


def _stack_policy(
    name: str, description: str, rule: Callable[[list[tuple[str, Props]]], list[str]]
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for violation in rule([(r.resource_type, r.props) for r in args.resources]):
            report(violation, None)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every Strata policy, ready for a PolicyPack or for direct validation in tests."""
    policies: list[ResourceValidationPolicy | StackValidationPolicy] = [
        _resource_policy(name, description, rule) for name, (description, rule) in RESOURCE_RULES.items()
    ]
    policies += [_stack_policy(name, description, rule) for name, (description, rule) in STACK_RULES.items()]
    return policies
