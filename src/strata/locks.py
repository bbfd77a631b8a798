"""Reading the committed locks (locks/cpu.txt for make and CI, locks/cuda.txt for images)."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from strata.errors import SpecError


def load_lock(path: Path) -> dict[str, str]:
    """Map each locked package's canonical name to its pinned version."""
    if not path.is_file():
        raise SpecError(f"{path}: lock file missing; run `make lock` and `make lock-cuda`")
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        pinned = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if len(pinned) != 1:
            raise SpecError(f"{path}:{number}: {line!r} is not an exact pin (name==version)")
        pins[canonicalize_name(requirement.name)] = pinned[0]
    return pins
