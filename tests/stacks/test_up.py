"""`strata up` on a cloud stack goes through Pulumi's Automation API, and says what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from strata.provision import write_inventory


def test_without_the_pulumi_cli_up_says_how_to_install_it_and_exits_2() -> None:
    env = {"PATH": str(Path(sys.executable).parent), "HOME": "/nonexistent"}
    result = subprocess.run(
        [sys.executable, "-m", "strata", "up", "aws-h100"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "run `strata up aws-h100` again" in result.stderr


def test_the_exported_inventory_is_written_for_ansible(tmp_path: Path) -> None:
    inventory = {"all": {"children": {"ray_head": {"hosts": {"h": {"ray_node_ip": "10.0.0.5"}}}}}}
    path = write_inventory({"inventory": inventory, "ray_address": "10.0.0.5:6379"}, tmp_path)
    assert yaml.safe_load(path.read_text()) == inventory
