"""Run manifests: what a job ran with, so `strata reproduce` can run it again and compare.

Every job run through `strata exec` (so `strata run`, `strata submit` and the demo)
writes `job.yaml` (the job with absolute paths) and `run-manifest.json` next to its
outputs once its checks have passed: the resolved job, the hash of its job file, the git
commit of the checkout, the lock's hash, package versions, the seed, fingerprints of its
inputs, and the stack it ran on. A pipeline's outputs may be on object storage (`s3://`):
both files go there through strata.storage, and only local inputs are fingerprinted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from strata.errors import JobError
from strata.job_kinds import RunTarget, kind_of, output_dir
from strata.spec.load import Job
from strata.storage import Location, refused

MANIFEST_NAME = "run-manifest.json"
JOB_FILE_NAME = "job.yaml"
PACKAGES = ("strata", "torch", "deepspeed", "ray", "datasketch", "tokenizers", "pydantic", "numpy", "scipy")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_commit() -> dict[str, Any]:
    """The commit of the checkout Strata runs from (None when installed from a package)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def _lock() -> dict[str, Any] | None:
    """The lock Strata was installed with, with its hash (None when absent).

    The container image names its lock in STRATA_LOCK; a checkout has locks/cpu.txt.
    """
    lock = Path(os.environ.get("STRATA_LOCK") or Path(__file__).resolve().parents[2] / "locks" / "cpu.txt")
    return {"file": str(lock), "sha256": sha256_file(lock)} if lock.is_file() else None


def input_fingerprints(job: Job) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of every file the job reads (its kind's row says which)."""
    files = kind_of(job).input_files(job)
    return [{"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files]


def build_run_manifest(
    job: Job, target: RunTarget, job_file: Location | Path, job_text: str
) -> dict[str, Any]:
    """Everything needed to run `job` again and check that nothing it depends on changed;
    `job_text` is the content of `job_file`. Reads the inputs, writes nothing."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "format": "strata-run-manifest-v1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "job": job.model_dump(mode="json"),
        "job_file": str(job_file),
        "job_sha256": hashlib.sha256(job_text.encode("utf-8")).hexdigest(),
        "seed": job.seed,
        "git": _git_commit(),
        "python": platform.python_version(),
        "packages": versions,
        "lock": _lock(),
        "image": os.environ.get("STRATA_IMAGE"),
        "stack": {"name": target.stack, "instance_type": target.instance_type},
        "inputs": input_fingerprints(job),
    }


def write_run_records(job: Job, target: RunTarget) -> Location:
    """Write `job.yaml` and `run-manifest.json` into the job's output folder (a local folder,
    made if missing, or an `s3://` prefix); return the manifest's location. The manifest is
    built (inputs hashed) before either file is written; JobError names a refused location."""
    out = output_dir(job)
    job_file = out / JOB_FILE_NAME
    job_text = yaml.safe_dump(job.model_dump(mode="json"), sort_keys=False)
    manifest = build_run_manifest(job, target, job_file, job_text)
    try:
        job_file.write_text(job_text)
        (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    except OSError as error:
        if out.is_local:
            raise
        raise refused(out.url, error) from None
    return out / MANIFEST_NAME


def changed_inputs(manifest: dict[str, Any]) -> list[str]:
    """Inputs that are missing or differ from the fingerprints a manifest recorded."""
    changed = []
    for item in manifest["inputs"]:
        path = Path(item["path"])
        if not path.is_file():
            changed.append(f"{path} (missing)")
        elif path.stat().st_size != item["bytes"] or sha256_file(path) != item["sha256"]:
            changed.append(f"{path} (contents differ)")
    return changed


def load_run_manifest(path: Location | Path) -> dict[str, Any]:
    """A run manifest, from a local file or object storage; JobError unless it is one."""
    try:
        data = json.loads(Location.of(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise JobError(f"{path}: not a readable run manifest: {exc}") from None
    if data.get("format") != "strata-run-manifest-v1":
        raise JobError(f"{path}: key `format`: expected strata-run-manifest-v1, got {data.get('format')!r}")
    return dict(data)
