"""The committed lock describes the environment the tests run in."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from strata.locks import load_lock


def test_every_locked_package_is_installed_at_its_locked_version() -> None:
    lines = [
        line for line in Path("locks/cpu.txt").read_text().splitlines() if line and not line.startswith("#")
    ]
    assert len(lines) > 50
    mismatched = []
    for line in lines:
        requirement = Requirement(line)
        (pin,) = requirement.specifier
        installed = metadata.version(requirement.name)
        if installed != pin.version:
            mismatched.append(f"{requirement.name}: locked {pin.version}, installed {installed}")
    assert mismatched == [], "run `make lock` after changing pyproject.toml"
    assert any(line.startswith("torch==") and "+cpu" in line for line in lines)


def test_the_cuda_lock_is_the_cpu_lock_with_torchs_cuda_build() -> None:
    cpu = load_lock(Path("locks/cpu.txt"))
    cuda = load_lock(Path("locks/cuda.txt"))
    assert set(cpu) <= set(cuda)
    differing = {name: (cpu[name], cuda[name]) for name in cpu if cpu[name] != cuda[name]}
    assert differing == {"torch": ("2.13.0+cpu", "2.13.0")}, "run `make lock-cuda` after `make lock`"
    cuda_only = set(cuda) - set(cpu)
    assert {"nvidia-nccl-cu13", "nvidia-cudnn-cu13", "cuda-toolkit", "triton"} <= cuda_only
    assert all(name.startswith(("nvidia-", "cuda-")) for name in cuda_only - {"triton", "setuptools"})
