"""Write locks/cuda.txt: the CPU lock with torch's CUDA build and the CUDA libraries it pulls.

The container image (images/Dockerfile) installs with this lock. Every pin that the CPU
lock has stays as it is, so the two environments differ only in torch's build and its
CUDA wheels. Resolution uses pip's metadata-only dry run for Linux x86_64 and the image's
Python, so nothing large is downloaded.

Usage: python scripts/lock_cuda.py [--python 3.12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name

from strata.locks import load_lock

CPU_LOCK = Path("locks/cpu.txt")
CUDA_LOCK = Path("locks/cuda.txt")
# Built from source in the image (no wheel), so left out of the binary-only resolution.
SOURCE_ONLY = {"deepspeed"}
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(5, 29)] + [
    "manylinux2014_x86_64",
    "linux_x86_64",
]
HEADER = """\
# The locked Python environment of the container image (images/Dockerfile): locks/cpu.txt
# with torch's CUDA build from PyPI and the CUDA wheels it depends on, for Linux x86_64.
# Regenerate with 'make lock-cuda' after 'make lock'.
"""


def resolve(requirements: list[str], python: str) -> dict[str, str]:
    """Resolve for Linux x86_64 without installing; return name -> version."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        platform_args = [arg for tag in PLATFORMS for arg in ("--platform", tag)]
        subprocess.run(
            [
                sys.executable, "-m", "pip", "--isolated", "install", "--quiet", "--dry-run",
                "--ignore-installed", "--target", str(Path(tmp) / "target"), "--only-binary=:all:",
                "--python-version", python, *platform_args, "--report", str(report), *requirements,
            ],
            check=True,
        )  # fmt: skip
        installs = json.loads(report.read_text())["install"]
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.12", help="Python version of the image")
    args = parser.parse_args()
    cpu = load_lock(CPU_LOCK)
    torch_version = cpu["torch"].split("+")[0]
    requested = [f"{name}=={version}" for name, version in cpu.items() if name not in {"torch", *SOURCE_ONLY}]
    resolved = resolve([*requested, f"torch=={torch_version}"], args.python)
    changed = {name for name, version in resolved.items() if name in cpu and cpu[name] != version}
    if changed - {"torch"}:
        raise SystemExit(f"the CUDA resolution moved CPU-lock pins: {sorted(changed - {'torch'})}")
    pins = {**resolved, **{name: cpu[name] for name in SOURCE_ONLY}}
    body = "".join(f"{name}=={pins[name]}\n" for name in sorted(pins))
    CUDA_LOCK.write_text(HEADER + body)
    print(f"wrote {CUDA_LOCK}: {len(pins)} pins, torch=={pins['torch']}")


if __name__ == "__main__":
    main()
