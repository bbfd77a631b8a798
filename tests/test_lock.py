"""The committed lock describes the environment the tests run in."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement


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
