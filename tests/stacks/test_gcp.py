"""GcpGpuCluster and TpuCluster under Pulumi's mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.spec import ClusterSpec, load_cluster
from strata.stacks.gcp import GcpGpuCluster
from strata.stacks.tpu import TpuCluster
from tests.stacks.mocks import policy_violations, run_program

A3 = load_cluster(Path("stacks/Pulumi.gcp-a3.yaml"))
V5P = load_cluster(Path("stacks/Pulumi.gcp-tpu-v5p.yaml"))


def _with(spec: ClusterSpec, **update: object) -> ClusterSpec:
    return ClusterSpec.model_validate({**spec.model_dump(), **update})


def test_a3_mega_nodes_get_one_vpc_per_gpu_nic_and_compact_placement() -> None:
    program = run_program(lambda: GcpGpuCluster("g", A3))
    networks = program.of_type("gcp:compute/network:Network")
    assert len(networks) == 1 + 8  # management + 8 GPU NICs (catalog)
    assert sorted(n.inputs.get("mtu", 0) for n in networks) == [0] + [8244] * 8
    nodes = [r for r in program.of_type("gcp:compute/instance:Instance") if r.name.startswith("g-node-")]
    assert len(nodes) == 2
    node = nodes[0].inputs
    assert node["machineType"] == "a3-megagpu-8g"
    assert len(node["networkInterfaces"]) == 9
    assert not any(nic.get("accessConfigs") for nic in node["networkInterfaces"])  # no external address
    assert node["resourcePolicies"] == "g-compact-id"
    assert node["reservationAffinity"]["specificReservation"]["values"] == ["my-a3-reservation"]
    assert node["metadata"]["enable-oslogin"] == "TRUE"
    policy = program.one("gcp:compute/resourcePolicy:ResourcePolicy").inputs
    assert policy["groupPlacementPolicy"] == {"collocation": "COLLOCATED", "vmCount": 2}
    assert policy_violations(program.resources) == {}


def test_ssh_comes_only_from_iap_and_data_from_filestore() -> None:
    program = run_program(lambda: GcpGpuCluster("g", A3))
    ssh = next(r for r in program.of_type("gcp:compute/firewall:Firewall") if r.name == "g-ssh").inputs
    assert ssh["sourceRanges"] == ["35.235.240.0/20"]
    share = program.one("gcp:filestore/instance:Instance").inputs
    assert share["fileShares"]["capacityGb"] == 2560
    assert program.outputs["mounts"] == [
        {"kind": "filestore", "source": "10.0.9.2:/data", "mount_point": "/data"}
    ]
    head = program.outputs["inventory"]["all"]["children"]["ray_head"]["hosts"]["g-head"]
    assert "gcloud compute start-iap-tunnel %h %p" in head["ansible_ssh_common_args"]
    assert program.outputs["tunnel_command"].startswith("gcloud compute start-iap-tunnel g-head 8265")


def test_tpu_slices_take_the_declared_topology() -> None:
    spec = _with(V5P, tpu={"topology": "4x4x4", "queued": False}, node_count=1)
    program = run_program(lambda: TpuCluster("t", spec))
    vm = program.one("gcp:tpu/v2Vm:V2Vm").inputs
    assert vm["acceleratorConfig"] == {"type": "V5P", "topology": "4x4x4"}
    assert vm["runtimeVersion"] == "v2-alpha-tpuv5"
    assert vm["networkConfig"]["enableExternalIps"] is False
    workers = program.outputs["inventory"]["all"]["children"]["ray_worker"]["hosts"]
    assert len(workers) == 16  # v5p-128: 16 hosts of 4 chips
    first = next(iter(workers.values()))
    assert "-W %h:%p ubuntu@t-head" in first["ansible_ssh_common_args"]  # reached through the head


def test_multislice_is_one_queued_resource_with_a_node_per_slice() -> None:
    program = run_program(lambda: TpuCluster("t", V5P))
    queued = program.one("gcp:tpu/v2QueuedResource:V2QueuedResource").inputs
    specs = queued["tpu"]["nodeSpecs"]
    assert [s["nodeId"] for s in specs] == ["t-slice-0", "t-slice-1"]
    assert {s["node"]["acceleratorType"] for s in specs} == {"v5p-128"}
    assert program.of_type("gcp:tpu/v2Vm:V2Vm") == []


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        ("4x4x5", "is not a TPU-v5p slice shape"),
        ("4x4x8", "has 128 chips, v5p-128 has 64"),
        ("4x4", "is not a TPU-v5p slice shape"),
    ],
)
def test_a_topology_outside_the_allowed_shapes_is_refused(topology: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _with(V5P, tpu={"topology": topology})


def test_v5e_takes_two_dimensional_shapes() -> None:
    spec = _with(V5P, instance_type="v5litepod-16", tpu={"topology": None, "queued": False}, node_count=1)
    assert spec.tpu_topology().topology == "4x4"
    with pytest.raises(ValueError, match="not a TPU-v5e slice shape"):
        _with(spec, tpu={"topology": "2x2x4"})


@pytest.mark.parametrize(("instance_type", "gpu_nics"), [("a3-highgpu-8g", 4), ("a3-megagpu-8g", 8)])
def test_gpu_nic_vpcs_follow_the_catalog(instance_type: str, gpu_nics: int) -> None:
    spec = _with(
        A3, instance_type=instance_type, capacity={"type": "spot"}, storage={"kind": "gcs", "bucket": "b"}
    )
    program = run_program(lambda: GcpGpuCluster("h", spec))
    node = next(r for r in program.of_type("gcp:compute/instance:Instance") if r.name == "h-node-0").inputs
    assert len(node["networkInterfaces"]) == 1 + gpu_nics
    assert node["scheduling"]["provisioningModel"] == "SPOT"
    assert program.outputs["mounts"] == [{"kind": "gcs", "source": "gs://b", "mount_point": "/data"}]
    exported = program.outputs["inventory"]["all"]["vars"]["common_mounts"]
    assert exported == [{"src": "b", "path": "/data", "fstype": "gcsfuse"}]  # mounted by the common role
    bucket_access = program.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs
    assert (bucket_access["bucket"], bucket_access["role"]) == ("b", "roles/storage.objectUser")


def test_nodes_and_the_head_get_their_own_boot_disk() -> None:
    program = run_program(lambda: GcpGpuCluster("d", _with(A3, disk_gib=2000, head={"disk_gib": 100})))
    disks = {
        r.name: r.inputs["bootDisk"]["initializeParams"]["size"]
        for r in program.of_type("gcp:compute/instance:Instance")
    }
    assert disks == {"d-node-0": 2000, "d-node-1": 2000, "d-head": 100}
