"""`strata up`: cloud stacks go through Pulumi's Automation API and say what is missing; the
connection comes from the stack outputs contract, the same way for static and cloud stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from strata.connection import build_connection, load_connection, resolve_stack, save_connection
from strata.errors import ClusterError
from strata.provision import write_inventory
from strata.spec import load_cluster
from strata.stacks.outputs import AccessInfo, NodeAddress, read_inventory, stack_outputs, static_outputs


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


def test_a_stack_is_named_or_given_by_its_file() -> None:
    by_name, by_file = resolve_stack("local"), resolve_stack("tests/fixtures/Pulumi.test.yaml")
    assert (by_name.name, by_name.file, by_name.state_dir) == (
        "local",
        Path("stacks/Pulumi.local.yaml"),
        Path(".strata/local"),
    )
    assert (by_file.name, by_file.file, by_file.state_dir) == (
        "test",
        Path("tests/fixtures/Pulumi.test.yaml"),
        Path(".strata/test"),
    )


def test_a_static_stack_connects_through_its_outputs() -> None:
    ref = resolve_stack("local")
    spec = load_cluster(ref.file)
    inventory = Path("playbooks/inventories/local.yml")
    connection = build_connection(
        ref,
        static_outputs(spec, read_inventory(inventory)),
        instance_type=spec.instance_type,
        inventory=inventory,
        python="/opt/venv/bin/python",
    )
    assert (connection.head_address, connection.gcs_address, connection.dashboard_url) == (
        "127.0.0.1",
        "127.0.0.1:6379",
        "http://127.0.0.1:8265",
    )
    assert connection.inventory == str(inventory.resolve())
    assert connection.token_path == str(Path(".strata/local/auth_token").resolve())


def test_a_cloud_stack_connects_through_the_same_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_cluster(Path("stacks/Pulumi.aws-h100.yaml"))
    nodes = [
        NodeAddress(name="h", private_ip="10.0.1.7", target="i-0head", head=True),
        NodeAddress(name="n0", private_ip="10.0.1.8", target="i-0node"),
    ]
    outputs = stack_outputs(spec, nodes, AccessInfo(method="ssm", region="us-east-1"), [])
    monkeypatch.chdir(tmp_path)
    ref = resolve_stack("aws-h100")
    connection = build_connection(
        ref,
        outputs,
        instance_type=spec.instance_type,
        inventory=Path("inventory.yml"),
        python="/opt/venv/bin/python",
    )
    assert (connection.head_address, connection.gcs_address, connection.dashboard_url) == (
        "10.0.1.7",
        "10.0.1.7:6379",
        "http://10.0.1.7:8265",
    )
    save_connection(ref, connection)
    assert (tmp_path / ".strata" / "aws-h100").stat().st_mode & 0o777 == 0o700
    assert load_connection("aws-h100") == connection


def test_a_cluster_that_is_not_up_says_to_run_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ClusterError, match=r"cluster 'mine' is not up .*; run `strata up mine`"):
        load_connection("mine")
    (tmp_path / ".strata" / "mine").mkdir(parents=True)
    (tmp_path / ".strata" / "mine" / "connection.json").write_text('{"stack": "mine"}')
    with pytest.raises(ClusterError, match=r"not a connection this Strata wrote .*; run `strata up mine`"):
        load_connection("mine")
