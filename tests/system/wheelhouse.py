"""A wheelhouse of Strata's runtime dependencies at locks/cpu.txt, for nodes with no index.

The network-namespace nodes reach nothing outside this machine, as on an air-gapped
cluster: they install Strata's environment from this directory (`environment.wheelhouse`).
It is built once per lock and pyproject.toml (about 600 MB) and kept between runs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

LOCK = Path("locks/cpu.txt")


def runtime_requirements() -> list[str]:
    """Strata's own dependencies, without those of its extras."""
    required = [Requirement(r) for r in metadata.requires("strata") or []]
    return [str(r) for r in required if r.marker is None or "extra" not in str(r.marker)]


def build_wheelhouse() -> Path:
    """The wheelhouse directory, built now unless this lock's is already there."""
    digest = hashlib.sha256(LOCK.read_bytes() + Path("pyproject.toml").read_bytes()).hexdigest()[:12]
    target = Path(f"/tmp/strata-wheelhouse-{digest}")
    if target.is_dir():
        return target
    for stale in Path("/tmp").glob("strata-wheelhouse-*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="strata-wheelhouse-build-", dir="/tmp") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("\n".join(runtime_requirements()) + "\n")
        wheels = Path(scratch) / "wheels"
        # No build isolation: DeepSpeed's sdist builds against this environment's torch.
        pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation"]
        subprocess.run(
            [
                *pip_wheel,
                "--wheel-dir",
                str(wheels),
                "--constraint",
                str(LOCK),
                "--requirement",
                str(requirements),
            ],
            check=True,
        )
        wheels.rename(target)
    return target
