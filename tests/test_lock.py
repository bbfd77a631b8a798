"""The committed lock describes the environment the tests run in."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import yaml

from strata.locks import load_lock


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    pins = load_lock(Path("locks/cpu.txt"))
    assert len(pins) > 50
    mismatched = [
        f"{name}: locked {version}, installed {metadata.version(name)}"
        for name, version in pins.items()
        if metadata.version(name) != version
    ]
    assert mismatched == [], "run `make lock` after changing pyproject.toml"
    assert pins["torch"].endswith("+cpu")


def test_the_cuda_lock_is_the_cpu_lock_with_torchs_cuda_build() -> None:
    cpu = load_lock(Path("locks/cpu.txt"))
    cuda = load_lock(Path("locks/cuda.txt"))
    assert set(cpu) <= set(cuda)
    differing = {name: (cpu[name], cuda[name]) for name in cpu if cpu[name] != cuda[name]}
    assert differing == {"torch": ("2.13.0+cpu", "2.13.0")}, "run `make lock-cuda` after `make lock`"
    cuda_only = set(cuda) - set(cpu)
    assert {"nvidia-nccl-cu13", "nvidia-cudnn-cu13", "cuda-toolkit", "triton"} <= cuda_only
    assert all(name.startswith(("nvidia-", "cuda-")) for name in cuda_only - {"triton", "setuptools"})


def test_the_jax_lock_is_installed_and_agrees_with_the_cpu_lock() -> None:
    """`make` installs both locks into one environment: shared packages have one version."""
    cpu = load_lock(Path("locks/cpu.txt"))
    jax = load_lock(Path("locks/jax-cpu.txt"))
    assert {"jax", "jaxlib", "optax", "orbax-checkpoint", "numpy", "ml-dtypes"} <= set(jax)
    assert {name: (cpu[name], jax[name]) for name in set(cpu) & set(jax) if cpu[name] != jax[name]} == {}
    mismatched = [
        f"{name}: locked {version}, installed {metadata.version(name)}"
        for name, version in jax.items()
        if metadata.version(name) != version
    ]
    assert mismatched == [], "run `make install` after changing locks/jax-cpu.txt"


def test_the_tpu_lock_is_the_jax_lock_with_libtpu_and_the_role_installs_it() -> None:
    jax = load_lock(Path("locks/jax-cpu.txt"))
    tpu = load_lock(Path("locks/tpu.txt"))
    assert {name: tpu.get(name) for name in jax if tpu.get(name) != jax[name]} == {}
    assert set(tpu) - set(jax) == {"libtpu", "requests", "idna", "urllib3", "certifi", "charset-normalizer"}
    defaults = yaml.safe_load(Path("playbooks/roles/tpu/defaults/main.yml").read_text())
    assert (defaults["tpu_jax_version"], defaults["tpu_libtpu_version"]) == (tpu["jax"], tpu["libtpu"])
    assert defaults["tpu_lock_file"].endswith("locks/tpu.txt")
