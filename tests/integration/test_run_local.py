"""`strata run` starts a private Ray, runs a pipeline job on it, and stops it; bad records are
quarantined and the output is deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import strata

pytestmark = pytest.mark.integration


def make_job(tmp_path: Path, name: str) -> Path:
    lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:400]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join([*lines, "{broken json", json.dumps({"id": "e", "text": ""})]) + "\n")
    job = tmp_path / f"{name}.yaml"
    job.write_text(
        f"kind: pipeline\nname: {name}\ninput: {{paths: [{corpus}]}}\n"
        f"tokenizer: {{vocab_size: 1024}}\nshards: {{tokens_per_shard: 20000}}\noutput: {{dir: {tmp_path / name}}}\n"
    )
    return job


def test_run_pipeline_twice_gives_identical_shards(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = strata("run", str(make_job(tmp_path, name)))
        assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "a" / "stats" / "pipeline.json").read_text())
    assert stats["documents"]["total"] == 402
    assert stats["documents"]["quarantined_invalid_json"] == 1
    assert stats["documents"]["quarantined_empty_text"] == 1
    quarantine = (tmp_path / "a" / "quarantine.jsonl").read_text().splitlines()
    assert [json.loads(q)["reason"] for q in quarantine] == ["invalid_json", "empty_text"]
    manifests = [json.loads((tmp_path / n / "shards" / "manifest.json").read_text()) for n in ("a", "b")]
    assert [s["sha256"] for s in manifests[0]["shards"]] == [s["sha256"] for s in manifests[1]["shards"]]
    assert len(manifests[0]["shards"]) > 1
