"""`strata run` starts a private Ray, runs a pipeline job on it, and stops it; bad records are
quarantined and the output is deterministic. The uninterrupted run these tests compare with is
the `pipeline_run` fixture's, shared with the sweep test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from strata.local_ray import session_members
from strata.pipeline.shards import TokenizedDocument, write_shards
from tests.integration.helpers import make_job, strata

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reproduced(pipeline_run: Path) -> subprocess.CompletedProcess[str]:
    """`strata reproduce` of the shared pipeline run into pipeline_run/again: the job run a
    second time by `strata run`'s code (its own head), compared with the first."""
    manifest = pipeline_run / "first" / "run-manifest.json"
    return strata("reproduce", str(manifest), "--out", str(pipeline_run / "again"))


def test_run_pipeline_twice_gives_identical_shards(
    pipeline_run: Path, reproduced: subprocess.CompletedProcess[str]
) -> None:
    assert reproduced.returncode == 0, reproduced.stderr[-3000:]
    stats = json.loads((pipeline_run / "first" / "stats" / "pipeline.json").read_text())
    assert stats["documents"]["total"] == 402
    assert stats["documents"]["quarantined_invalid_json"] == 1
    assert stats["documents"]["quarantined_empty_text"] == 1
    quarantine = (pipeline_run / "first" / "quarantine.jsonl").read_text().splitlines()
    assert [json.loads(q)["reason"] for q in quarantine] == ["invalid_json", "empty_text"]
    manifests = [
        json.loads((pipeline_run / n / "shards" / "manifest.json").read_text()) for n in ("first", "again")
    ]
    assert [s["sha256"] for s in manifests[0]["shards"]] == [s["sha256"] for s in manifests[1]["shards"]]
    assert len(manifests[0]["shards"]) > 1


def test_run_manifest_and_reproduce(pipeline_run: Path, reproduced: subprocess.CompletedProcess[str]) -> None:
    manifest_path = pipeline_run / "first" / "run-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for key in ("job", "job_sha256", "seed", "git", "python", "packages", "stack", "inputs", "image", "lock"):
        assert key in manifest
    assert manifest["lock"]["file"].endswith("locks/cpu.txt") and len(manifest["lock"]["sha256"]) == 64
    assert manifest["packages"]["ray"] and manifest["packages"]["torch"]
    assert manifest["stack"] == {"name": "local", "instance_type": "cpu"}
    corpus = pipeline_run / "corpus.jsonl"
    assert manifest["inputs"][0]["path"] == str(corpus) and len(manifest["inputs"][0]["sha256"]) == 64

    assert reproduced.returncode == 0, reproduced.stderr[-3000:]
    assert '"identical": true' in reproduced.stdout

    original = corpus.read_bytes()
    try:
        with corpus.open("a") as appended:
            appended.write(json.dumps({"id": "new", "text": "a document added later"}) + "\n")
        refused = strata("reproduce", str(manifest_path))
    finally:
        corpus.write_bytes(original)  # other tests read this corpus
    assert refused.returncode == 2
    assert "inputs changed" in refused.stderr and "corpus.jsonl (contents differ)" in refused.stderr


def test_a_refused_training_run_writes_nothing(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    doc = TokenizedDocument(np.arange(1, 100, dtype=np.uint16), "en", "web")
    write_shards(docs=[doc], out_dir=shards, tokens_per_shard=10_000, seed=0, vocab_size=256, eot_id=0)
    job = tmp_path / "long.yaml"
    job.write_text(
        f"kind: train\nname: long\nmodel: {{seq_len: 512}}\nsteps: 2\n"
        f"data: {{shards: {shards}}}\noutput: {{dir: {tmp_path / 'long'}}}\n"
    )
    result = strata("run", str(job))
    assert result.returncode == 2
    assert "99 tokens is less than one sample of 513" in result.stderr
    assert not (tmp_path / "long").exists()


def _child_ray_head(parent: int) -> int | None:
    return _child(parent, b"start\x00--head")


def test_sigterm_to_strata_run_stops_its_ray(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(make_job(tmp_path, "killed"))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    head = None
    deadline = time.monotonic() + 60
    while head is None and time.monotonic() < deadline:
        head = _child_ray_head(run.pid)
        time.sleep(0.5)
    assert head is not None, "strata run did not start a Ray head"
    time.sleep(10)  # the head is up and the job is running
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 128 + signal.SIGTERM
    assert not Path(f"/proc/{head}").exists()
    assert session_members(head) == []


def _child(parent: int, marker: bytes) -> int | None:
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and marker in cmdline:
            return int(proc.name)
    return None


def test_killed_pipeline_resumes_with_identical_output(tmp_path: Path, pipeline_run: Path) -> None:
    whole = pipeline_run / "first"  # the same job on the same corpus, run without interruption
    job = make_job(tmp_path, "killed", corpus=pipeline_run / "corpus.jsonl")
    run = subprocess.Popen(
        [sys.executable, "-m", "strata", "run", str(job)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done = tmp_path / "killed" / "work" / "filtered" / "_DONE"
    deadline = time.monotonic() + 300
    while not done.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    worker = _child(run.pid, b"exec\x00")
    assert done.exists() and worker is not None, "the job did not finish its first stage"
    os.kill(worker, signal.SIGKILL)  # the job process dies mid-run; strata run stops its Ray
    assert run.wait(timeout=120) != 0
    assert not (tmp_path / "killed" / "shards" / "manifest.json").exists()

    again = strata("run", str(job))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage filtered: finished by an earlier run" in again.stderr
    for name in ("shards/manifest.json", "tokenizer.json", "duplicates.jsonl", "quarantine.jsonl"):
        assert (tmp_path / "killed" / name).read_bytes() == (whole / name).read_bytes(), name
    manifest = json.loads((whole / "shards" / "manifest.json").read_text())
    for shard in manifest["shards"]:
        for key in ("bin", "idx"):
            expected = (whole / "shards" / shard[key]).read_bytes()
            assert (tmp_path / "killed" / "shards" / shard[key]).read_bytes() == expected
