"""AwsCluster under Pulumi's mocks: what `pulumi up` would create for a p5 cluster."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from strata.spec import ClusterSpec, load_cluster
from strata.stacks.aws import AwsCluster
from tests.stacks.mocks import policy_violations, run_program

SPEC = load_cluster(Path("stacks/Pulumi.aws-h100.yaml"))


def _with(**update: object) -> ClusterSpec:
    return ClusterSpec.model_validate({**SPEC.model_dump(), **update})


@pytest.fixture(scope="module")
def p5() -> object:
    return run_program(lambda: AwsCluster("c", SPEC))


def test_p5_nodes_get_all_32_efa_interfaces_in_a_cluster_placement_group(p5) -> None:  # type: ignore[no-untyped-def]
    template = p5.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["instanceType"] == "p5.48xlarge"
    cards = template["networkInterfaces"]
    assert [c["interfaceType"] for c in cards] == ["efa"] + ["efa-only"] * 31
    assert [c["networkCardIndex"] for c in cards] == list(range(32))
    assert [c["deviceIndex"] for c in cards] == [0] + [1] * 31
    assert not any(c.get("associatePublicIpAddress") for c in cards)
    assert p5.one("aws:ec2/placementGroup:PlacementGroup").inputs["strategy"] == "cluster"
    assert template["placement"]["groupName"] == "c-placement"
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    nodes = [r for r in p5.of_type("aws:ec2/instance:Instance") if r.name.startswith("c-node-")]
    assert len(nodes) == 2 and all(n.inputs["launchTemplate"]["id"] == "c-gpu-id" for n in nodes)


def test_lustre_persistent_2_is_sized_and_linked_to_the_bucket(p5) -> None:  # type: ignore[no-untyped-def]
    lustre = p5.one("aws:fsx/lustreFileSystem:LustreFileSystem").inputs
    assert lustre["deploymentType"] == "PERSISTENT_2"
    assert (lustre["storageCapacity"], lustre["perUnitStorageThroughput"]) == (2400, 250)
    assert lustre["subnetIds"] == "c-private-id"
    link = p5.one("aws:fsx/dataRepositoryAssociation:DataRepositoryAssociation").inputs
    assert link["dataRepositoryPath"] == "s3://my-pretraining-data"
    mount = p5.outputs["mounts"][0]
    assert mount["kind"] == "lustre" and mount["mount_point"] == "/data" and "@tcp:/" in mount["source"]
    script = base64.b64decode(p5.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["userData"]).decode()
    assert f"{mount['source']} /data lustre" in script
    exported = p5.outputs["inventory"]["all"]["vars"]["common_mounts"]
    assert exported == [{"src": mount["source"], "path": "/data", "fstype": "lustre"}]


def test_network_is_private_with_nat_and_endpoints_and_no_public_ingress(p5) -> None:  # type: ignore[no-untyped-def]
    endpoints = {
        r.inputs["serviceName"]: r.inputs["vpcEndpointType"]
        for r in p5.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert endpoints == {
        "com.amazonaws.us-east-1.s3": "Gateway",
        "com.amazonaws.us-east-1.ssm": "Interface",
        "com.amazonaws.us-east-1.ssmmessages": "Interface",
        "com.amazonaws.us-east-1.ec2messages": "Interface",
    }
    assert len(p5.of_type("aws:ec2/natGateway:NatGateway")) == 1
    members = next(r for r in p5.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "c-members")
    assert members.inputs["ingress"] == [
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True, "description": "cluster members"}
    ]
    for subnet in p5.of_type("aws:ec2/subnet:Subnet"):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_iam_grants_ssm_and_only_the_declared_bucket(p5) -> None:  # type: ignore[no-untyped-def]
    attachment = p5.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment").inputs
    assert attachment["policyArn"].endswith("AmazonSSMManagedInstanceCore")
    policy = json.loads(p5.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    resources = {r for s in policy["Statement"] for r in [s["Resource"]]}
    assert resources == {"arn:aws:s3:::my-pretraining-data", "arn:aws:s3:::my-pretraining-data/*"}
    assert "*" not in {a for s in policy["Statement"] for a in s["Action"]}


def test_outputs_contract_has_the_inventory_tunnel_and_cost(p5) -> None:  # type: ignore[no-untyped-def]
    outputs = p5.outputs
    groups = outputs["inventory"]["all"]["children"]
    assert list(groups["ray_head"]["hosts"]) == ["c-head"]
    assert list(groups["ray_worker"]["hosts"]) == ["c-node-0", "c-node-1"]
    assert list(groups["slurm_compute"]["hosts"]) == ["c-node-0", "c-node-1"]  # scheduler: slurm
    head = groups["ray_head"]["hosts"]["c-head"]
    assert head["ansible_host"] == "c-head-id"  # an instance id: Ansible goes through SSM
    assert "AWS-StartSSHSession" in head["ansible_ssh_common_args"]
    assert outputs["ray_dashboard"] == f"http://{head['ray_node_ip']}:8265"
    assert outputs["tunnel_command"].startswith("aws ssm start-session --target c-head-id")
    assert outputs["hourly_usd"] == pytest.approx(2 * 98.32)


def test_the_stack_passes_every_policy(p5) -> None:  # type: ignore[no-untyped-def]
    assert policy_violations(p5.resources) == {}


def test_a_capacity_block_drops_the_placement_group_and_targets_the_reservation() -> None:
    spec = _with(capacity={"type": "capacity-block", "reservation_id": "cr-0123456789abcdef0"})
    program = run_program(lambda: AwsCluster("cb", spec))
    assert program.of_type("aws:ec2/placementGroup:PlacementGroup") == []
    template = program.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    target = template["capacityReservationSpecification"]["capacityReservationTarget"]
    assert target["capacityReservationId"] == "cr-0123456789abcdef0"
    assert template["instanceMarketOptions"]["marketType"] == "capacity-block"
    assert policy_violations(program.resources) == {}


def test_spot_nodes_and_declared_ssh_ingress() -> None:
    spec = _with(
        capacity={"type": "spot"},
        network={**SPEC.network.model_dump(), "allowed_ingress_cidrs": ["203.0.113.0/24"]},
    )
    program = run_program(lambda: AwsCluster("s", spec))
    assert (
        program.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["instanceMarketOptions"]["marketType"]
        == "spot"
    )
    members = next(r for r in program.of_type("aws:ec2/securityGroup:SecurityGroup") if r.name == "s-members")
    assert members.inputs["ingress"][1]["cidrBlocks"] == ["203.0.113.0/24"]
    assert members.inputs["ingress"][1]["fromPort"] == 22


def test_nodes_and_the_head_get_their_own_boot_disk() -> None:
    spec = _with(disk_gib=2000, head={"disk_gib": 100})
    program = run_program(lambda: AwsCluster("d", spec))
    ebs = program.one("aws:ec2/launchTemplate:LaunchTemplate").inputs["blockDeviceMappings"][0]["ebs"]
    assert ebs["volumeSize"] == 2000
    head = next(r for r in program.of_type("aws:ec2/instance:Instance") if r.name == "d-head")
    assert head.inputs["rootBlockDevice"]["volumeSize"] == 100
