"""Roles that cannot run for real here (nvidia, efa, tpu, kubernetes): syntax, check mode, skipping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from strata.errors import ClusterError
from strata.playbook import run_playbook

PLAYBOOK = Path("playbooks/node-image.yml")
INVENTORY = Path("playbooks/inventories/local.yml")


@pytest.mark.parametrize("playbook", ["node-image.yml", "site.yml", "health.yml", "kubernetes.yml"])
def test_every_playbook_passes_syntax_check(playbook: str) -> None:
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    result = subprocess.run(
        [str(ansible_playbook), "--syntax-check", "-i", str(INVENTORY), f"playbooks/{playbook}"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_node_without_gpu_or_efa_is_skipped_cleanly(tmp_path: Path) -> None:
    stats = run_playbook(PLAYBOOK, INVENTORY, {"ansible_become": False}, tmp_path, check=True)
    assert stats["localhost"].get("failures", 0) == 0
    assert stats["localhost"].get("changed", 0) == 0
    events = "".join(p.read_text() for p in (tmp_path / "artifacts").rglob("stdout"))
    assert "no NVIDIA GPU on localhost: the NVIDIA stack is skipped" in events
    assert "no EFA device on localhost: EFA is skipped" in events
    assert "no TPU device on localhost: the TPU runtime is skipped" in events


def test_forcing_the_nvidia_stack_on_an_unsupported_os_names_host_and_task(tmp_path: Path) -> None:
    extravars = {"ansible_become": False, "nvidia_install_without_gpu": True}
    with pytest.raises(ClusterError, match=r"host localhost: task 'Refuse other distributions on GPU nodes'"):
        run_playbook(PLAYBOOK, INVENTORY, extravars, tmp_path, check=True)


def test_kubernetes_in_check_mode_refuses_a_distribution_it_does_not_support(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  children:\n    kubernetes_control_plane:\n      hosts:\n        localhost:\n"
        "          ansible_connection: local\n"
        "          ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
    )
    with pytest.raises(ClusterError, match=r"host localhost: task 'Refuse distributions other than Ubuntu'"):
        run_playbook(
            Path("playbooks/kubernetes.yml"),
            inventory,
            {"ansible_become": False},
            tmp_path / "run",
            check=True,
        )
