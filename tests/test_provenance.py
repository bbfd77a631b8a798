"""Run manifests name the image, the lock and the stack a job ran with, and are written only
once the job's checks have passed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from strata import job_kinds
from strata.job_kinds import RunTarget
from strata.jobs import execute
from strata.provenance import build_run_manifest, sha256_file
from strata.spec import PipelineJob, load_pipeline_job

DEMO_PIPELINE = Path("jobs/demo/pipeline.yaml")


def manifest_of(job: PipelineJob, target: RunTarget | None = None) -> dict:
    return build_run_manifest(job, target or RunTarget(), Path("out/job.yaml"), "kind: pipeline\n")


def test_inside_the_image_the_manifest_records_its_tag_and_cuda_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_IMAGE", "strata:cu130")
    monkeypatch.setenv("STRATA_LOCK", str(Path("locks/cuda.txt").resolve()))
    manifest = manifest_of(load_pipeline_job(DEMO_PIPELINE))
    assert manifest["image"] == "strata:cu130"
    assert manifest["lock"] == {
        "file": str(Path("locks/cuda.txt").resolve()),
        "sha256": sha256_file(Path("locks/cuda.txt")),
    }
    assert manifest["inputs"] and all(len(item["sha256"]) == 64 for item in manifest["inputs"])


def test_from_a_checkout_the_manifest_records_the_cpu_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATA_LOCK", raising=False)
    manifest = manifest_of(load_pipeline_job(DEMO_PIPELINE))
    assert manifest["lock"]["file"] == str(Path("locks/cpu.txt").resolve())


def test_the_manifest_records_the_stack_it_was_given() -> None:
    target = RunTarget(stack="aws-h100", instance_type="p5.48xlarge")
    manifest = manifest_of(load_pipeline_job(DEMO_PIPELINE), target)
    assert manifest["stack"] == {"name": "aws-h100", "instance_type": "p5.48xlarge"}
    assert manifest["job_sha256"] == hashlib.sha256(b"kind: pipeline\n").hexdigest()


def test_the_job_and_its_manifest_are_written_after_the_checks_before_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    job = job_kinds.redirect(load_pipeline_job(DEMO_PIPELINE), out)
    seen: list[str] = []

    def prepare(job: PipelineJob, target: RunTarget) -> job_kinds.Start:
        seen.append(f"checked; output exists: {out.exists()}")

        def start() -> dict[str, str]:
            seen.append(f"started; written: {sorted(p.name for p in out.iterdir())}")
            return {"ok": "yes"}

        return start

    row = dataclasses.replace(job_kinds.KINDS["pipeline"], prepare=prepare)
    monkeypatch.setitem(job_kinds.KINDS, "pipeline", row)
    assert execute(job, RunTarget(stack="mine", instance_type="cpu")) == {"ok": "yes"}
    assert seen == ["checked; output exists: False", "started; written: ['job.yaml', 'run-manifest.json']"]
    manifest = json.loads((out / "run-manifest.json").read_text())
    assert manifest["job_file"] == str(out / "job.yaml")
    assert manifest["job_sha256"] == sha256_file(out / "job.yaml")
    assert manifest["job"]["input"]["paths"] == [str(Path("data/demo/corpus.jsonl").resolve())]
    assert manifest["stack"] == {"name": "mine", "instance_type": "cpu"}
