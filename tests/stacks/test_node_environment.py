"""`environment.install`: which lock each kind of node gets, Strata's wheel, and the refusals.
The role itself runs on the two-node cluster of tests/system/test_multi_node.py."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from strata.cluster import _ray_executable
from strata.node_environment import TORCH_CPU_INDEX, build_strata_wheel, environment_vars, source_tree
from strata.spec import ClusterSpec, load_cluster
from strata.yaml_loader import load_yaml


def _with_environment(stack: str, **environment: Any) -> ClusterSpec:
    raw = load_yaml(stack)["config"]["strata:cluster"]
    return ClusterSpec.model_validate({**raw, "environment": {"install": True, **environment}})


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.mark.parametrize(
    ("stack", "locks", "extras", "packages"),
    [
        ("stacks/Pulumi.local.yaml", ["cpu.txt"], "", []),
        ("stacks/Pulumi.aws-h100.yaml", ["cuda.txt"], "", []),
        ("stacks/Pulumi.gcp-tpu-v5p.yaml", ["cpu.txt", "tpu.txt"], "[jax]", ["jax[tpu]"]),
    ],
)
def test_each_kind_of_node_gets_its_lock(
    stack: str, locks: list[str], extras: str, packages: list[str], wheel_dir: Path
) -> None:
    spec = _with_environment(stack)
    found = environment_vars(spec, wheel_dir)
    assert [Path(lock).name for lock in found["strata_env_locks"]] == locks
    assert all(Path(lock).is_file() for lock in found["strata_env_locks"])
    assert (found["strata_env_extras"], found["strata_env_packages"]) == (extras, packages)
    assert found["ray_env"] == {"STRATA_LOCK": f"/opt/strata/locks/{locks[-1]}"}
    # torch's +cpu pins are on PyTorch's CPU index; the CUDA lock's torch is on PyPI.
    assert (TORCH_CPU_INDEX in found["strata_env_pip_args"]) == (locks != ["cuda.txt"])
    assert _ray_executable(spec) == Path("/opt/strata/venv/bin/ray")


def test_a_wheelhouse_means_no_index(wheel_dir: Path) -> None:
    spec = _with_environment("stacks/Pulumi.local.yaml", path="/srv/strata", wheelhouse="/shared/wheels")
    found = environment_vars(spec, wheel_dir)
    assert found["strata_env_pip_args"] == ["--no-index", "--find-links", "/shared/wheels"]
    uncompiled = _with_environment("stacks/Pulumi.local.yaml", wheelhouse="/shared/wheels", compile=False)
    assert environment_vars(uncompiled, wheel_dir)["strata_env_pip_args"][-1] == "--no-compile"
    assert found["strata_env_dir"] == "/srv/strata"
    assert _ray_executable(spec) == Path("/srv/strata/venv/bin/ray")


def test_without_install_the_role_is_off_and_ray_is_this_environments() -> None:
    spec = load_cluster(Path("stacks/Pulumi.local.yaml"))
    assert environment_vars(spec, Path("/nonexistent")) == {"strata_env_install": False}
    assert _ray_executable(spec).parent == Path(sys.executable).parent


def test_strata_wheel_is_byte_identical_for_the_same_sources_and_holds_the_package(tmp_path: Path) -> None:
    first = build_strata_wheel(source_tree(), tmp_path / "a")
    second = build_strata_wheel(source_tree(), tmp_path / "b")
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    names = set(zipfile.ZipFile(first).namelist())
    sources = {str(p.relative_to("src")) for p in Path("src/strata").rglob("*.py")}
    assert sources <= names
    assert "strata/spec/catalog/instances.csv" in names
    assert not any("__pycache__" in name or ".egg-info" in name for name in names)


def test_install_with_a_ray_executable_or_on_kubernetes_is_refused() -> None:
    raw = load_yaml("stacks/Pulumi.local.yaml")["config"]["strata:cluster"]
    with pytest.raises(ValidationError, match=r"drop `ray.executable`"):
        ClusterSpec.model_validate(
            {**raw, "environment": {"install": True}, "ray": {"executable": "/opt/venv/bin/ray"}}
        )
    k8s = load_yaml("stacks/Pulumi.k8s.yaml")["config"]["strata:cluster"]
    with pytest.raises(ValidationError, match=r"on Kubernetes the pods run `kubernetes.image`"):
        ClusterSpec.model_validate({**k8s, "environment": {"install": True}})
