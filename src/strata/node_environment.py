"""Strata's environment on bare nodes: what the Ansible role `strata_env` installs.

`strata up` on a stack with `environment.install` builds Strata's wheel from this checkout
and hands the role the wheel, the lock of the nodes' kind and where to install from:

- GPU nodes: locks/cuda.txt (torch's CUDA build, as in the container image);
- TPU VMs: locks/cpu.txt and locks/tpu.txt, with Strata's `jax` extra and `jax[tpu]` (libtpu);
- CPU nodes: locks/cpu.txt (torch's CPU build, from PyTorch's CPU index).

With `environment.wheelhouse` the nodes install from that directory alone (no index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

import strata
from strata.errors import StrataError
from strata.spec import ClusterSpec
from strata.spec.catalog import load_catalog

# torch's CPU builds (the `+cpu` pins of locks/cpu.txt) are on PyTorch's index, not on PyPI.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# libtpu's releases, as the `tpu` role and JAX's install guide use.
LIBTPU_RELEASES = "https://storage.googleapis.com/jax-releases/libtpu_releases.html"
# Zip timestamps of the wheel (1980-01-01, the earliest a zip holds): the same sources give
# the same bytes, so a second `strata up` copies and reinstalls nothing.
WHEEL_EPOCH = "315532800"

NodeKind = Literal["cpu", "cuda", "tpu"]
LOCKS: dict[NodeKind, tuple[str, ...]] = {
    "cpu": ("cpu.txt",),
    "cuda": ("cuda.txt",),
    "tpu": ("cpu.txt", "tpu.txt"),
}


def node_kind(spec: ClusterSpec) -> NodeKind:
    """Which lock the stack's nodes get: by the catalog row of its instance type."""
    row = load_catalog().get(spec.instance_type)
    if row.provider == "gcp-tpu":
        return "tpu"
    return "cuda" if row.is_gpu else "cpu"


def source_tree() -> Path:
    """The checkout this Strata runs from (pyproject.toml, src/, locks/).

    Raises:
        StrataError: Strata was installed from a wheel, so there are no sources to build from.
    """
    root = Path(strata.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "locks").is_dir():
        raise StrataError(
            f"environment.install builds Strata's wheel from its sources, but this Strata "
            f"({Path(strata.__file__).parent}) is not a checkout: run `strata up` from a clone "
            "(`make install`), or drop environment.install and set ray.executable to an "
            "environment the nodes have"
        )
    return root


def build_strata_wheel(source: Path, dest: Path) -> Path:
    """Build Strata's wheel from `source` into `dest` and return its path.

    The build reads pyproject.toml, README.md and src/ only (as the container image does), in
    a scratch copy, so stale build directories of the checkout never leak into the wheel; zip
    timestamps are fixed, so identical sources give a byte-identical wheel.

    Raises:
        StrataError: pip could not build the wheel (its output is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="strata-wheel-") as scratch:
        tree = Path(scratch) / "strata"
        tree.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(source / name, tree / name)
        shutil.copytree(
            source / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        built = Path(scratch) / "dist"
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        result = subprocess.run(
            [*pip_wheel, "--wheel-dir", str(built), str(tree)],
            capture_output=True,
            text=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": WHEEL_EPOCH},
            check=False,
        )
        wheels = list(built.glob("strata-*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise StrataError(f"building Strata's wheel from {source} failed:\n{result.stderr[-3000:]}")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / wheels[0].name
        shutil.copyfile(wheels[0], target)
        return target


def environment_vars(spec: ClusterSpec, wheel_dir: Path) -> dict[str, Any]:
    """The role's variables for `strata up`: builds Strata's wheel into `wheel_dir`."""
    env = spec.environment
    if not env.install:
        return {"strata_env_install": False}
    source = source_tree()
    kind = node_kind(spec)
    return {
        "strata_env_install": True,
        "strata_env_dir": env.path,
        "strata_env_python": env.python,
        "strata_env_wheel": str(build_strata_wheel(source, wheel_dir.resolve())),
        "strata_env_extras": "[jax]" if kind == "tpu" else "",
        "strata_env_packages": ["jax[tpu]"] if kind == "tpu" else [],
        "strata_env_locks": [str(source / "locks" / name) for name in LOCKS[kind]],
        "strata_env_pip_args": _pip_args(kind, env.wheelhouse) + ([] if env.compile else ["--no-compile"]),
        # Run manifests name the lock the nodes' environment was installed with.
        "ray_env": {"STRATA_LOCK": f"{env.path}/locks/{LOCKS[kind][-1]}"},
    }


def _pip_args(kind: NodeKind, wheelhouse: str | None) -> list[str]:
    """Where pip finds the packages: the wheelhouse alone, or PyPI and the indexes of the kind."""
    if wheelhouse:
        return ["--no-index", "--find-links", wheelhouse]
    return {
        "cpu": ["--extra-index-url", TORCH_CPU_INDEX],
        "cuda": [],
        "tpu": ["--extra-index-url", TORCH_CPU_INDEX, "--find-links", LIBTPU_RELEASES],
    }[kind]


def environment_ray(spec: ClusterSpec) -> Path:
    """The `ray` of the installed environment on the nodes."""
    return Path(spec.environment.path) / "venv" / "bin" / "ray"
