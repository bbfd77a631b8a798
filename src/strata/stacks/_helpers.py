"""Pure helpers of the stacks (address plans, interfaces, user data), tested without Pulumi."""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass
from typing import Any

UBUNTU_OWNER = "099720109477"  # Canonical's AWS account
UBUNTU_AMI_NAME = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
UBUNTU_GCP_IMAGE = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"
IAP_RANGE = "35.235.240.0/20"  # where Google's IAP TCP forwarding connects from
GPU_NIC_MTU = 8244  # A3 GPU NICs (GPUDirect-TCPX/TCPXO)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressPlan:
    """Subnets of the cluster network."""

    private: str
    public: str


def address_plan(vpc_cidr: str) -> AddressPlan:
    """Quarters of the VPC: the first for nodes (private), the third for the NAT (public)."""
    network = ipaddress.ip_network(vpc_cidr)
    if network.prefixlen > 24:
        raise ValueError(f"network.vpc_cidr {vpc_cidr} is too small; use a /24 or larger")
    quarters = list(network.subnets(prefixlen_diff=2))
    return AddressPlan(private=str(quarters[0]), public=str(quarters[2]))


def gpu_nic_ranges(count: int, base: str = "10.128.0.0/9") -> list[str]:
    """One /16 per GPU NIC network (GCP: each GPU NIC sits in a VPC of its own)."""
    return [str(net) for net in list(ipaddress.ip_network(base).subnets(new_prefix=16))[:count]]


def efa_interfaces(efa_count: int) -> list[dict[str, Any]]:
    """EFA interfaces of one instance: card 0 is `efa` (with an IP), the others `efa-only`."""
    return [
        {
            "device_index": 0 if card == 0 else 1,
            "network_card_index": card,
            "interface_type": "efa" if card == 0 else "efa-only",
        }
        for card in range(efa_count)
    ]


def user_data(*, ssh_user: str, ssh_public_key: str | None, mounts: list[dict[str, str]]) -> str:
    """cloud-init that lets Ansible take over: its public key, Python, and the shared mounts."""
    lines = ["#!/bin/bash", "set -euo pipefail", "export DEBIAN_FRONTEND=noninteractive"]
    if ssh_public_key:
        home = f"/home/{ssh_user}"
        lines += [
            f"install -d -m 700 -o {ssh_user} -g {ssh_user} {home}/.ssh",
            f"echo {shlex.quote(ssh_public_key)} >> {home}/.ssh/authorized_keys",
            f"chown {ssh_user}:{ssh_user} {home}/.ssh/authorized_keys && chmod 600 {home}/.ssh/authorized_keys",
        ]
    lines.append("apt-get update -q && apt-get install -y -q python3 python3-venv")
    for mount in mounts:
        lines += _mount_lines(mount)
    return "\n".join(lines) + "\n"


def _mount_lines(mount: dict[str, str]) -> list[str]:
    point = mount["mount_point"]
    options = {
        "lustre": ("lustre", "defaults,noatime,flock,_netdev,x-systemd.automount"),
        "nfs": ("nfs", "defaults,_netdev,nconnect=16"),
        "filestore": ("nfs", "defaults,_netdev"),
    }
    packages = {"lustre": "lustre-client-modules-aws", "nfs": "nfs-common", "filestore": "nfs-common"}
    kind = mount["kind"]
    if kind in options:
        fstype, opts = options[kind]
        return [
            f"apt-get install -y -q {packages[kind]}",
            f"mkdir -p {point}",
            f"grep -q ' {point} ' /etc/fstab || echo '{mount['source']} {point} {fstype} {opts} 0 0' >> /etc/fstab",
            f"mount {point} || true",
        ]
    return [f"mkdir -p {point}"]  # s3/gcs buckets are mounted by the node roles (FUSE)
