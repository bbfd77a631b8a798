"""Run manifests name the image and the lock a job ran with."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.provenance import build_run_manifest, sha256_file
from strata.spec import load_spec


def test_inside_the_image_the_manifest_records_its_tag_and_cuda_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_IMAGE", "strata:cu130")
    monkeypatch.setenv("STRATA_LOCK", str(Path("locks/cuda.txt").resolve()))
    job_file = Path("jobs/demo/pipeline.yaml")
    manifest = build_run_manifest(load_spec(job_file), job_file)  # type: ignore[arg-type]
    assert manifest["image"] == "strata:cu130"
    assert manifest["lock"] == {
        "file": str(Path("locks/cuda.txt").resolve()),
        "sha256": sha256_file(Path("locks/cuda.txt")),
    }
    assert manifest["inputs"] and all(len(item["sha256"]) == 64 for item in manifest["inputs"])


def test_from_a_checkout_the_manifest_records_the_cpu_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATA_LOCK", raising=False)
    job_file = Path("jobs/demo/pipeline.yaml")
    manifest = build_run_manifest(load_spec(job_file), job_file)  # type: ignore[arg-type]
    assert manifest["lock"]["file"] == str(Path("locks/cpu.txt").resolve())
