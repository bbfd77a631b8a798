"""GcpGpuCluster: A3 High / A3 Mega nodes with one VPC per GPU NIC and compact placement.

Nodes and the head have no external address: egress goes through Cloud NAT, SSH comes
only through IAP with OS Login. Each GPU NIC sits in a VPC of its own with MTU 8244, as
GPUDirect-TCPX/TCPXO need.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog
from strata.stacks._helpers import GPU_NIC_MTU, UBUNTU_GCP_IMAGE, gpu_nic_ranges, user_data
from strata.stacks.base import PendingNode, StrataCluster
from strata.stacks.gcp_network import build_network, storage_mounts
from strata.stacks.outputs import AccessInfo


class GcpGpuCluster(StrataCluster):
    """Management VPC, GPU NIC VPCs, compact placement, GPU nodes, head node, Filestore or GCS."""

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("strata:gcp:GpuCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        net = build_network(name, spec, child)
        gpu_subnets = self._gpu_networks(name, spec, child)
        mounts = storage_mounts(name, spec, net, child)
        script = mounts.apply(
            lambda m: user_data(
                ssh_user=spec.access.ssh_user, ssh_public_key=spec.access.ssh_public_key, mounts=m
            )
        )
        placement = None
        if spec.node_count > 1:
            placement = gcp.compute.ResourcePolicy(
                f"{name}-compact",
                region=spec.region,
                project=spec.project,
                group_placement_policy={"collocation": "COLLOCATED", "vm_count": spec.node_count},
                opts=child,
            )
        common = {
            "zone": spec.zone,
            "project": spec.project,
            "service_account": {"email": net.service_account.email, "scopes": ["cloud-platform"]},
            "metadata": {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"},
            "metadata_startup_script": script,
            "shielded_instance_config": {"enable_vtpm": True, "enable_integrity_monitoring": True},
            "opts": child,
        }

        def boot(size_gib: int) -> dict[str, Any]:
            return {
                "initialize_params": {
                    "image": spec.image or UBUNTU_GCP_IMAGE,
                    "size": size_gib,
                    "type": "pd-ssd",
                }
            }

        mgmt_nic = {"subnetwork": net.subnet.id, "nic_type": "GVNIC"}
        workers = [
            gcp.compute.Instance(
                f"{name}-node-{i}",
                machine_type=spec.instance_type,
                boot_disk=boot(spec.disk_gib),
                network_interfaces=[
                    mgmt_nic,
                    *({"subnetwork": s.id, "nic_type": "GVNIC"} for s in gpu_subnets),
                ],
                scheduling=self._scheduling(spec),
                resource_policies=placement.id if placement else None,
                reservation_affinity=self._reservation(spec),
                labels={"strata-role": "worker"},
                **common,
            )
            for i in range(spec.node_count)
        ]
        head = gcp.compute.Instance(
            f"{name}-head",
            machine_type=spec.head_instance_type,
            boot_disk=boot(spec.head.disk_gib),
            network_interfaces=[mgmt_nic],
            labels={"strata-role": "head"},
            **common,
        )
        nodes = [PendingNode(name=f"{name}-head", private_ip=_address(head), target=head.name, head=True)]
        nodes += [
            PendingNode(name=f"{name}-node-{i}", private_ip=_address(w), target=w.name)
            for i, w in enumerate(workers)
        ]
        access = AccessInfo(method="iap", user=spec.access.ssh_user, zone=spec.zone, project=spec.project)
        self._publish(spec, nodes, access, mounts)

    @staticmethod
    def _gpu_networks(
        name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions
    ) -> list[gcp.compute.Subnetwork]:
        """One VPC and subnet per GPU NIC of the machine type (catalog), members-only firewall."""
        subnets = []
        count = load_catalog().get(spec.instance_type).gpu_nic_count
        for i, cidr in enumerate(gpu_nic_ranges(count)):
            network = gcp.compute.Network(
                f"{name}-gpu{i}",
                auto_create_subnetworks=False,
                mtu=GPU_NIC_MTU,
                project=spec.project,
                opts=opts,
            )
            subnets.append(
                gcp.compute.Subnetwork(
                    f"{name}-gpu{i}",
                    network=network.id,
                    region=spec.region,
                    project=spec.project,
                    ip_cidr_range=cidr,
                    opts=opts,
                )
            )
            gcp.compute.Firewall(
                f"{name}-gpu{i}-internal",
                network=network.id,
                project=spec.project,
                direction="INGRESS",
                source_ranges=[cidr],
                allows=[{"protocol": "all"}],
                opts=opts,
            )
        return subnets

    @staticmethod
    def _scheduling(spec: ClusterSpec) -> dict[str, object]:
        if spec.capacity.type == "spot":
            return {
                "provisioning_model": "SPOT",
                "preemptible": True,
                "automatic_restart": False,
                "on_host_maintenance": "TERMINATE",
                "instance_termination_action": "STOP",
            }
        return {"on_host_maintenance": "TERMINATE", "automatic_restart": True}

    @staticmethod
    def _reservation(spec: ClusterSpec) -> dict[str, object] | None:
        if spec.capacity.type != "reserved":
            return None
        return {
            "type": "SPECIFIC_RESERVATION",
            "specific_reservation": {
                "key": "compute.googleapis.com/reservation-name",
                "values": [spec.capacity.reservation_id],
            },
        }


def _address(instance: gcp.compute.Instance) -> pulumi.Output[str]:
    return instance.network_interfaces.apply(lambda nics: nics[0].network_ip or "")
