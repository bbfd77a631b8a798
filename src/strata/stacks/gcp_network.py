"""The network and identity pieces shared by GCP GPU clusters and TPU slices.

A management VPC with one private subnet, Cloud NAT for egress, firewall rules that let
members talk to each other and let only IAP (and declared CIDRs) reach SSH, and a
service account with no project roles beyond writing logs and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from strata.spec import ClusterSpec
from strata.stacks._helpers import IAP_RANGE, address_plan

NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")


@dataclass(frozen=True, slots=True)
class GcpNetwork:
    network: gcp.compute.Network
    subnet: gcp.compute.Subnetwork
    service_account: gcp.serviceaccount.Account


def build_network(name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions) -> GcpNetwork:
    """Management network, NAT, firewall and the nodes' service account."""
    network = gcp.compute.Network(
        f"{name}-net", auto_create_subnetworks=False, project=spec.project, opts=opts
    )
    subnet = gcp.compute.Subnetwork(
        f"{name}-subnet",
        network=network.id,
        region=spec.region,
        project=spec.project,
        ip_cidr_range=address_plan(spec.network.vpc_cidr).private,
        private_ip_google_access=True,
        opts=opts,
    )
    router = gcp.compute.Router(
        f"{name}-router", network=network.id, region=spec.region, project=spec.project, opts=opts
    )
    gcp.compute.RouterNat(
        f"{name}-nat",
        router=router.name,
        region=spec.region,
        project=spec.project,
        nat_ip_allocate_option="AUTO_ONLY",
        source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
        opts=opts,
    )
    gcp.compute.Firewall(
        f"{name}-internal",
        network=network.id,
        project=spec.project,
        direction="INGRESS",
        source_ranges=[spec.network.vpc_cidr],
        allows=[{"protocol": "all"}],
        opts=opts,
    )
    gcp.compute.Firewall(
        f"{name}-ssh",
        network=network.id,
        project=spec.project,
        direction="INGRESS",
        source_ranges=[IAP_RANGE, *spec.network.allowed_ingress_cidrs],
        allows=[{"protocol": "tcp", "ports": ["22"]}],
        opts=opts,
    )
    account = gcp.serviceaccount.Account(
        f"{name}-nodes",
        account_id=f"{name}-nodes"[:30].rstrip("-"),
        display_name="Strata cluster nodes",
        project=spec.project,
        opts=opts,
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    for role in NODE_ROLES:
        gcp.projects.IAMMember(
            f"{name}-{role.split('/')[1]}", project=spec.project or "", role=role, member=member, opts=opts
        )
    if spec.storage.bucket:
        gcp.storage.BucketIAMMember(
            f"{name}-bucket",
            bucket=spec.storage.bucket,
            role="roles/storage.objectUser",
            member=member,
            opts=opts,
        )
    return GcpNetwork(network, subnet, account)


def storage_mounts(
    name: str, spec: ClusterSpec, net: GcpNetwork, opts: pulumi.ResourceOptions
) -> pulumi.Output[list[dict[str, str]]]:
    """Filestore (NFS) or a GCS bucket (FUSE) as the shared mount."""
    storage, point = spec.storage, spec.storage.mount_point
    if storage.kind == "gcs":
        return pulumi.Output.from_input(
            [{"kind": "gcs", "source": f"gs://{storage.bucket}", "mount_point": point}]
        )
    if storage.kind != "filestore":
        return pulumi.Output.from_input([])
    share = gcp.filestore.Instance(
        f"{name}-filestore",
        location=spec.zone,
        project=spec.project,
        tier="ZONAL",
        file_shares={"name": "data", "capacity_gb": storage.size_gib},
        networks=[{"network": net.network.name, "modes": ["MODE_IPV4"]}],
        opts=opts,
    )

    def mount(networks: list[gcp.filestore.outputs.InstanceNetwork]) -> list[dict[str, str]]:
        address = (networks[0].ip_addresses or ["0.0.0.0"])[0]
        return [{"kind": "filestore", "source": f"{address}:/data", "mount_point": point}]

    return share.networks.apply(mount)
