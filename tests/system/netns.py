"""A simulated cluster on this machine: nodes in network namespaces, joined by a bridge.

Each node is a network namespace with its own address, hostname (UTS namespace) and
mount namespace, in which its own /etc/hosts, limits directory, Slurm state and
configuration directories, Ray state directory and Strata environment directory are
bind-mounted, and an sshd of its own. Ansible reaches the nodes
over SSH like real machines; everything else (the disk, the Python environment) is
shared, as on a cluster with shared storage. Only namespaces, links and processes this
harness created are removed, also when a step failed.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

ROOT = Path("/tmp/strata-netns")
BRIDGE = "strata-br0"
SUBNET = "10.77.0"
# Paths every node sees privately (bind-mounted from ROOT/<node>/ in its mount namespace).
SLURM_STATE = Path("/var/lib/strata-netns-slurm")
SLURM_CONF = Path("/etc/strata-netns-slurm")
RAY_STATE = Path("/tmp/strata-ray-netns")
STRATA_ENV = Path("/opt/strata-netns")  # environment.path: each node installs its own
PRIVATE_MOUNTS = {
    "hosts": Path("/etc/hosts"),
    "limits": Path("/etc/security/limits.d"),
    "slurm-state": SLURM_STATE,
    "slurm-conf": SLURM_CONF,
    "ray-state": RAY_STATE,
    "strata-env": STRATA_ENV,
}

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""


@dataclass
class Node:
    name: str
    address: str
    netns: str
    sshd: subprocess.Popen[bytes]


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class NetnsCluster:
    """`count` nodes named n1..nN at 10.77.0.11.. with sshd; use as a context manager."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.nodes: list[Node] = []
        self.key = ROOT / "id_ed25519"

    def __enter__(self) -> NetnsCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self.stop()  # leftovers of an interrupted run
        ROOT.mkdir(mode=0o700, parents=True)
        for target in PRIVATE_MOUNTS.values():
            if not target.exists():
                target.mkdir(parents=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        shutil.copy(self.key.with_suffix(".pub"), ROOT / "authorized_keys")
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{SUBNET}.{10 + i} n{i}\n" for i in range(1, self.count + 1)
        )
        for i in range(1, self.count + 1):
            self.nodes.append(self._start_node(f"n{i}", f"{SUBNET}.{10 + i}", i, hosts))
        for node in self.nodes:
            self._wait_for_ssh(node)

    def _start_node(self, name: str, address: str, index: int, hosts: str) -> Node:
        netns, veth = f"strata-{name}", f"strata-v{index}"
        _run("ip", "netns", "add", netns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _run("ip", "link", "set", veth, "master", BRIDGE, "up")
        _run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _run("ip", "-n", netns, "link", "set", "eth0", "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        node_dir = ROOT / name
        node_dir.mkdir()
        for private in PRIVATE_MOUNTS:
            (node_dir / private).mkdir()
        (node_dir / "hosts").rmdir()
        (node_dir / "hosts").write_text(hosts)
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(node_dir / "host_key"))
        config = node_dir / "sshd_config"
        config.write_text(SSHD_CONFIG.format(address=address, dir=node_dir, root=ROOT))
        binds = " && ".join(f"mount --bind {node_dir / src} {dst}" for src, dst in PRIVATE_MOUNTS.items())
        script = f"hostname {name} && {binds} && exec /usr/sbin/sshd -D -e -f {config}"
        log = (node_dir / "sshd.log").open("wb")
        sshd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--uts", "--mount", "--propagation", "private",
             "sh", "-c", script],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return Node(name=name, address=address, netns=netns, sshd=sshd)

    def _wait_for_ssh(self, node: Node, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.sshd.poll() is not None:
                raise RuntimeError(
                    f"sshd of {node.name} exited: {(ROOT / node.name / 'sshd.log').read_text()}"
                )
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex((node.address, 22)) == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"sshd of {node.name} did not listen on {node.address}:22 in {timeout} s")

    def ssh(self, node: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a node as root."""
        address = next(n.address for n in self.nodes if n.name == node)
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"root@{address}", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def inventory(self, extra_vars: dict[str, Any]) -> dict[str, Any]:
        """An Ansible inventory: n1 is Ray head and Slurm controller, every node computes."""
        hosts = {
            n.name: {
                "ansible_host": n.address,
                "ray_node_ip": n.address,
                "ray_state_dir": f"/tmp/strata-ray-{n.name}",
            }
            for n in self.nodes
        }
        first, rest = self.nodes[0].name, [n.name for n in self.nodes[1:]]
        return {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    "ansible_python_interpreter": sys.executable,
                    "common_set_hostname": False,
                    "slurm_conf_dir": str(SLURM_CONF),
                    "slurm_state_dir": str(SLURM_STATE),
                    **extra_vars,
                },
                "children": {
                    "ray_head": {"hosts": {first: hosts[first]}},
                    "ray_worker": {"hosts": {name: hosts[name] for name in rest}},
                    "slurm_controller": {"hosts": {first: None}},
                    "slurm_compute": {"hosts": dict.fromkeys(hosts)},
                },
            }
        }

    def write_inventory(self, path: Path, extra_vars: dict[str, Any]) -> Path:
        path.write_text(yaml.safe_dump(self.inventory(extra_vars), sort_keys=False))
        return path

    def stop(self) -> None:
        """Stop every process in the nodes' namespaces, then remove namespaces, links and files."""
        names = [n.netns for n in self.nodes] or [f"strata-n{i}" for i in range(1, self.count + 1)]
        for netns in names:
            if not Path(f"/run/netns/{netns}").exists():
                continue
            listed = subprocess.run(
                ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
            )
            pids = listed.stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-KILL", pid], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        for node in self.nodes:
            node.sshd.wait(timeout=10)
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        shutil.rmtree(ROOT, ignore_errors=True)
        for target in (SLURM_STATE, SLURM_CONF, RAY_STATE, STRATA_ENV):
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
        self.nodes = []
