"""TpuCluster: TPU VM slices (v5e, v5p, v6e) of a checked topology, with a CPU head node.

`node_count` slices are TPU VMs (`gcp.tpu.V2Vm`) or, with `tpu.queued`, one queued
resource holding every slice (it waits for capacity; multislice jobs get their slices
together). The slices have no external addresses; Ansible reaches their hosts through
the head, which is reached through IAP.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog
from strata.stacks._helpers import UBUNTU_GCP_IMAGE, user_data
from strata.stacks.base import PendingNode, StrataCluster
from strata.stacks.gcp_network import build_network, storage_mounts
from strata.stacks.outputs import AccessInfo


class TpuCluster(StrataCluster):
    """Network, head node and TPU slices; the inventory lists every TPU host as a worker."""

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("strata:gcp:TpuCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        net = build_network(name, spec, child)
        mounts = storage_mounts(name, spec, net, child)
        script = mounts.apply(
            lambda m: user_data(
                ssh_user=spec.access.ssh_user, ssh_public_key=spec.access.ssh_public_key, mounts=m
            )
        )
        shape = spec.tpu_topology()
        runtime = spec.tpu.runtime_version or shape.runtime_version
        network_config = {
            "network": net.network.id,
            "subnetwork": net.subnet.id,
            "enable_external_ips": False,
        }
        hosts_per_slice = load_catalog().get(spec.instance_type).hosts_per_node
        slices: list[pulumi.Output[list[str]]] = []
        if spec.tpu.queued:
            gcp.tpu.V2QueuedResource(
                f"{name}-slices",
                zone=spec.zone,
                project=spec.project,
                tpu={
                    "node_specs": [
                        {
                            "parent": f"projects/{spec.project}/locations/{spec.zone}",
                            "node_id": f"{name}-slice-{i}",
                            "node": {
                                "runtime_version": runtime,
                                "accelerator_type": spec.instance_type,
                                "network_config": network_config,
                            },
                        }
                        for i in range(spec.node_count)
                    ]
                },
                opts=child,
            )
            # A queued resource exports no host addresses; Ansible finds them with the
            # TPU API once the slices run (`gcloud compute tpus tpu-vm list`).
        else:
            for i in range(spec.node_count):
                vm = gcp.tpu.V2Vm(
                    f"{name}-slice-{i}",
                    zone=spec.zone,
                    project=spec.project,
                    runtime_version=runtime,
                    accelerator_config={"type": shape.accelerator_config_type, "topology": shape.topology},
                    network_config=network_config,
                    scheduling_config=self._scheduling(spec),
                    service_account={"email": net.service_account.email, "scopes": ["cloud-platform"]},
                    metadata={"enable-oslogin": "TRUE", "startup-script": script},
                    labels={"strata-role": "worker"},
                    opts=child,
                )
                slices.append(vm.network_endpoints.apply(lambda eps: [e.ip_address or "" for e in eps or []]))
        head = gcp.compute.Instance(
            f"{name}-head",
            machine_type=spec.head_instance_type,
            zone=spec.zone,
            project=spec.project,
            boot_disk={
                "initialize_params": {"image": spec.image or UBUNTU_GCP_IMAGE, "size": spec.head.disk_gib}
            },
            network_interfaces=[{"subnetwork": net.subnet.id}],
            service_account={"email": net.service_account.email, "scopes": ["cloud-platform"]},
            metadata={"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"},
            metadata_startup_script=script,
            shielded_instance_config={"enable_vtpm": True, "enable_integrity_monitoring": True},
            labels={"strata-role": "head"},
            opts=child,
        )
        nodes = [
            PendingNode(
                name=f"{name}-head",
                private_ip=head.network_interfaces.apply(lambda n: n[0].network_ip or ""),
                target=head.name,
                head=True,
            )
        ]
        for i, endpoints in enumerate(slices):
            for host in range(hosts_per_slice):
                address = endpoints.apply(lambda eps, host=host: eps[host] if host < len(eps) else "")
                nodes.append(
                    PendingNode(
                        name=f"{name}-slice-{i}-host-{host}",
                        private_ip=address,
                        target=address,
                        via_head=True,
                    )
                )
        access = AccessInfo(method="iap", user=spec.access.ssh_user, zone=spec.zone, project=spec.project)
        self._publish(spec, nodes, access, mounts)

    @staticmethod
    def _scheduling(spec: ClusterSpec) -> dict[str, Any] | None:
        if spec.capacity.type == "spot":
            return {"spot": True}
        if spec.capacity.type == "reserved":
            return {"reserved": True}
        return None
