"""Each policy refuses a stack that breaks it (resources declared under Pulumi's mocks)."""

from __future__ import annotations

import pulumi_aws as aws
import pulumi_gcp as gcp

from strata.stacks._helpers import efa_interfaces
from tests.stacks.mocks import policy_violations, run_program

SAFE_DISK = [{"device_name": "/dev/sda1", "ebs": {"encrypted": "true"}}]
IMDSV2 = {"http_tokens": "required"}


def test_ingress_from_the_internet_to_ray_or_ssh_is_refused() -> None:
    def declare() -> None:
        aws.ec2.SecurityGroup(
            "open-dashboard",
            ingress=[{"protocol": "tcp", "from_port": 8265, "to_port": 8265, "cidr_blocks": ["0.0.0.0/0"]}],
        )
        aws.ec2.SecurityGroupRule(
            "open-ssh",
            type="ingress",
            protocol="tcp",
            from_port=22,
            to_port=22,
            cidr_blocks=["0.0.0.0/0"],
            security_group_id="sg-1",
        )
        gcp.compute.Firewall(
            "open-iap",
            network="n",
            source_ranges=["0.0.0.0/0"],
            allows=[{"protocol": "tcp", "ports": ["22"]}],
        )
        aws.ec2.SecurityGroup(
            "https-ok",
            ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": ["0.0.0.0/0"]}],
        )
        aws.ec2.SecurityGroup(
            "private-ok",
            ingress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["10.0.0.0/16"]}],
        )

    violations = policy_violations(run_program(declare).resources)
    found = violations["no-public-admin-ingress"]
    assert len(found) == 3
    assert {v.split(":")[0] for v in found} == {"open-dashboard", "open-ssh", "open-iap"}


def test_instances_without_imdsv2_are_refused() -> None:
    def declare() -> None:
        aws.ec2.Instance(
            "legacy", ami="ami-1", instance_type="m7i.large", root_block_device={"encrypted": True}
        )
        aws.ec2.Instance(
            "modern",
            ami="ami-1",
            instance_type="m7i.large",
            metadata_options=IMDSV2,
            root_block_device={"encrypted": True},
        )

    assert policy_violations(run_program(declare).resources) == {
        "imdsv2-required": ["legacy: metadataOptions.httpTokens is None; set it to 'required' (IMDSv2)"]
    }


def test_unencrypted_disks_are_refused() -> None:
    def declare() -> None:
        aws.ec2.LaunchTemplate(
            "plain",
            metadata_options=IMDSV2,
            block_device_mappings=[{"device_name": "/dev/sda1", "ebs": {"volume_size": 100}}],
        )
        aws.ebs.Volume("scratch", availability_zone="us-east-1a", size=100)

    found = policy_violations(run_program(declare).resources)["encryption-at-rest"]
    assert [v.split(":")[0] for v in found] == ["plain", "scratch"]


def test_a_gpu_template_with_fewer_efa_interfaces_than_the_catalog_is_refused() -> None:
    def declare() -> None:
        aws.ec2.LaunchTemplate(
            "p5-short",
            instance_type="p5.48xlarge",
            metadata_options=IMDSV2,
            block_device_mappings=SAFE_DISK,
            network_interfaces=efa_interfaces(4),
        )
        aws.ec2.LaunchTemplate(
            "p4d-ok",
            instance_type="p4d.24xlarge",
            metadata_options=IMDSV2,
            block_device_mappings=SAFE_DISK,
            network_interfaces=efa_interfaces(4),
        )

    assert policy_violations(run_program(declare).resources) == {
        "efa-count-matches-catalog": [
            "p5-short: p5.48xlarge has 32 EFA interfaces in the catalog; the template attaches 4"
        ]
    }


def test_multi_node_gpu_without_a_placement_group_is_refused() -> None:
    def declare() -> None:
        for i in range(2):
            aws.ec2.Instance(
                f"gpu-{i}",
                ami="ami-1",
                instance_type="p4d.24xlarge",
                metadata_options=IMDSV2,
                root_block_device={"encrypted": True},
            )

    assert policy_violations(run_program(declare).resources) == {
        "placement-group-on-multi-node-gpu": ["GPU instance has no placement group"] * 2
    }


HALVES = ["0.0.0.0/1", "128.0.0.0/1"]
SLASH_8S = [f"{i}.0.0.0/8" for i in range(256)]


def _ssh(cidrs: list[str], *, port: int = 22, v6: bool = False) -> dict[str, object]:
    key = "ipv6_cidr_blocks" if v6 else "cidr_blocks"
    return {"protocol": "tcp", "from_port": port, "to_port": port, key: cidrs}


def test_the_internet_in_pieces_is_refused_like_the_whole() -> None:
    def declare() -> None:
        aws.ec2.SecurityGroup("halves", ingress=[_ssh(HALVES)])
        aws.ec2.SecurityGroup("two-rules", ingress=[_ssh(HALVES[:1]), _ssh(HALVES[1:])])
        aws.ec2.SecurityGroup("slash-8s", ingress=[_ssh(SLASH_8S)])
        aws.ec2.SecurityGroup("v6-halves", ingress=[_ssh(["::/1", "8000::/1"], v6=True)])
        aws.ec2.SecurityGroup("global-unicast", ingress=[_ssh(["2000::/3"], v6=True)])
        gcp.compute.Firewall(
            "gcp-halves", network="n", source_ranges=HALVES, allows=[{"protocol": "tcp", "ports": ["6379"]}]
        )
        # Not the internet, or not an admin port:
        aws.ec2.SecurityGroup("one-8-missing", ingress=[_ssh([c for c in SLASH_8S if c != "8.0.0.0/8"])])
        aws.ec2.SecurityGroup("different-ports", ingress=[_ssh(HALVES[:1]), _ssh(HALVES[1:], port=8265)])
        aws.ec2.SecurityGroup("https-halves", ingress=[_ssh(HALVES, port=443)])
        aws.ec2.SecurityGroup("v6-quarter", ingress=[_ssh(["2000::/4"], v6=True)])

    found = policy_violations(run_program(declare).resources)["no-public-admin-ingress"]
    assert sorted(v.split(":")[0] for v in found) == sorted(
        ["halves", "two-rules", "slash-8s", "v6-halves", "global-unicast", "gcp-halves"]
    )
    assert any("0.0.0.0/1, 128.0.0.0/1 together cover every public IPv4 address" in v for v in found)
    assert any("reaches port 6379" in v for v in found)


def test_separate_rules_that_add_up_to_the_internet_are_refused() -> None:
    def declare() -> None:
        for i, cidr in enumerate(HALVES):
            aws.ec2.SecurityGroupRule(
                f"half-{i}",
                type="ingress",
                security_group_id="sg-1",
                **_ssh([cidr]),
            )
            aws.vpc.SecurityGroupIngressRule(
                f"v4-{i}",
                security_group_id="sg-2",
                ip_protocol="tcp",
                from_port=10001,
                to_port=10001,
                cidr_ipv4=cidr,
            )
            aws.ec2.SecurityGroupRule(  # another group: its half is no opening
                f"other-{i}",
                type="ingress",
                security_group_id=f"sg-{3 + i}",
                **_ssh([cidr]),
            )
        gcp.compute.Firewall("fw-a", network="n", source_ranges=HALVES[:1], allows=[{"protocol": "tcp"}])
        gcp.compute.Firewall(
            "fw-b", network="n", target_tags=["head"], source_ranges=HALVES[1:], allows=[{"protocol": "all"}]
        )

    violations = policy_violations(run_program(declare).resources)
    assert "no-public-admin-ingress" not in violations  # no single resource opens anything
    found = violations["no-public-admin-ingress-across-rules"]
    assert {v.split(":")[0] for v in found} == {"security group sg-1", "security group sg-2", "network n"}
    assert "security group sg-1: 2 rules together: ingress from 0.0.0.0/1, 128.0.0.0/1" in found[0]
