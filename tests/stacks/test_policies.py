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
