"""`strata run` starts a private Ray, runs a pipeline job on it, and stops it; bad records are
quarantined and the output is deterministic. The uninterrupted run these tests compare with is
the `pipeline_run` fixture's, shared with the sweep test."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from strata.local_ray import session_members
from strata.pipeline.shards import TokenizedDocument, write_shards
from tests.integration.helpers import exec_job, make_job, strata

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


def _split_corpus(folder: Path, parts: int, lines_per_part: int) -> list[str]:
    """Write the demo corpus's first lines as files part-N.jsonl under `folder` (a broken
    line in the second); return their texts."""
    lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()
    texts = ["\n".join(lines[n * lines_per_part : (n + 1) * lines_per_part]) + "\n" for n in range(parts)]
    texts[1] += "{broken json\n"
    folder.mkdir(parents=True)
    for n, text in enumerate(texts):
        (folder / f"part-{n}.jsonl").write_text(text)
    return texts


RUN_PIPELINE = (
    "import sys, ray\n"
    "from strata.pipeline.run import run_pipeline\n"
    "from strata.spec.load import load_pipeline_job\n"
    "ray.init()\n"
    "run_pipeline(load_pipeline_job(sys.argv[1]))\n"
)


def _wait_until(done: Callable[[], bool], run: subprocess.Popen[bytes], what: str) -> None:
    """Poll `done` while `run` lives (and, once it has ended, for a minute more)."""
    deadline = time.monotonic() + 300
    ended = None
    while not done() and time.monotonic() < deadline:
        if run.poll() is not None:
            ended = ended or time.monotonic() + 60
            if time.monotonic() > ended:
                break
        time.sleep(0.1)
    assert done(), f"the job ended or stalled before {what}"


def _processes(cmdline_prefix: bytes) -> list[int]:
    """Processes whose command line (a Ray worker's: its task's name) starts with the prefix."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(cmdline_prefix):
                found.append(int(proc.name))
    return found


def test_a_pipeline_killed_in_each_phase_resumes_with_identical_output(
    tmp_path: Path, ray_env: dict[str, str]
) -> None:
    """Killed while reading (five of six input groups done; the sixth reads a FIFO that never
    answers), then killed again after its first checkpoint: each rerun starts where the last
    stopped and the output equals an uninterrupted run's."""
    texts = _split_corpus(tmp_path / "corpus", parts=6, lines_per_part=60)
    whole = exec_job(make_job(tmp_path, "whole", corpus=tmp_path / "corpus"), ray_env)
    assert whole.returncode == 0, whole.stderr[-3000:]

    (tmp_path / "corpus" / "part-5.jsonl").unlink()
    os.mkfifo(tmp_path / "corpus" / "part-5.jsonl")  # the sixth group waits for a writer
    job = make_job(tmp_path, "killed", corpus=tmp_path / "corpus")
    # The pipeline itself, as `strata exec` runs it, without the run manifest (which would
    # hash the FIFO first).
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_PIPELINE, str(job)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ray_env,
    )  # fmt: skip
    groups = tmp_path / "killed" / "work" / "documents"
    _wait_until(lambda: len(list(groups.glob("group-*.json"))) == 5, run, "five groups were done")
    run.kill()
    run.wait(timeout=120)
    _wait_until(lambda: not _processes(b"ray::_run_group"), run, "Ray ended the killed job's tasks")
    assert sorted(f.name for f in groups.glob("group-*.json")) == [f"group-0000{n}.json" for n in range(1, 6)]

    (tmp_path / "corpus" / "part-5.jsonl").unlink()
    (tmp_path / "corpus" / "part-5.jsonl").write_text(texts[5])
    with (tmp_path / "second.log").open("wb") as stderr:  # a file: a full pipe would stall the job
        second = subprocess.Popen(
            [sys.executable, "-m", "strata", "exec", str(job)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**ray_env, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        filtered = tmp_path / "killed" / "work" / "filtered" / "_DONE"
        _wait_until(lambda: filtered.exists() and not groups.exists(), second, "the first checkpoint")
        second.kill()
        second.wait(timeout=120)
    log = (tmp_path / "second.log").read_text()
    skipped = re.findall(r"input group (\d) of 6 \((part-\d\.jsonl)\): finished by an earlier run", log)
    assert skipped == [(str(n + 1), f"part-{n}.jsonl") for n in range(5)], log[-3000:]

    again = exec_job(job, ray_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage filtered: finished by an earlier run" in again.stderr
    assert "input group" not in again.stderr
    for name in ("shards/manifest.json", "tokenizer.json", "duplicates.jsonl", "quarantine.jsonl"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "whole" / "shards" / "manifest.json").read_text())
    for shard in manifest["shards"]:
        for key in ("bin", "idx"):
            expected = (tmp_path / "whole" / "shards" / shard[key]).read_bytes()
            assert (tmp_path / "killed" / "shards" / shard[key]).read_bytes() == expected
