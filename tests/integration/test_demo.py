"""`strata demo` end to end on this machine: real Ansible, Ray, Ray Data, datasketch, DeepSpeed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strata.train.metrics import read_metrics
from tests.integration.helpers import (
    TEST_STACK,
    TEST_STATE_DIR,
    SharedRay,
    assert_nothing_left_running,
    strata,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, shared_ray: SharedRay) -> Path:
    shared_ray.stop()  # its agent port is the stack head's
    out = tmp_path_factory.mktemp("demo")
    result = strata("demo", "--stack", TEST_STACK, "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_pipeline_filters_and_deduplicates_the_corpus(demo: Path) -> None:
    stats = json.loads((demo / "pipeline" / "stats" / "pipeline.json").read_text())
    docs = stats["documents"]
    assert docs["total"] == 2198
    assert docs["kept"] + sum(v for k, v in docs.items() if k not in ("total", "kept")) == docs["total"]
    assert stats["stages"]["gopher"]["dropped"] > 0 and stats["stages"]["language"]["dropped"] > 0
    # The 40 planted exact copies are their originals upper-cased: Gopher's stop words are
    # case-sensitive (datatrove's rule, FineWeb's), so the copies fall to it before exact dedup.
    assert stats["stages"]["gopher"]["dropped_by_reason"]["stop_words"] >= 40
    assert stats["stages"]["minhash_dedup"]["dropped"] >= 70  # 80 planted
    removed = {
        json.loads(line)["id"] for line in (demo / "pipeline" / "duplicates.jsonl").read_text().splitlines()
    }
    planted = [json.loads(line) for line in Path("data/demo/planted.jsonl").read_text().splitlines()]
    near = [p for p in planted if p["kind"] == "near"]
    caught = sum(p["id"] in removed or p["original"] in removed for p in near)
    assert caught / len(near) >= 0.95
    manifest = json.loads((demo / "pipeline" / "shards" / "manifest.json").read_text())
    assert manifest["total_tokens"] == stats["tokens"]["total"] > 500_000


def test_training_loss_falls_and_outputs_exist(demo: Path) -> None:
    rows = read_metrics(demo / "train" / "metrics.jsonl")
    assert len(rows) == 60
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0
    assert (demo / "train" / "model.pt").stat().st_size > 0
    checkpoints = [c for c in (demo / "train" / "ray").rglob("checkpoint_*") if c.is_dir()]
    assert checkpoints and any(checkpoints[0].rglob("*optim_states.pt"))


def test_report_and_plot_are_written(demo: Path) -> None:
    report = (demo / "report.md").read_text()
    for needle in (
        "documents",
        "minhash_dedup",
        "Tokens written",
        "loss, last step",
        "tokens/s",
        "total",
    ):
        assert needle in report
    assert (demo / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_run_records_a_manifest(demo: Path) -> None:
    for part in ("pipeline", "train"):
        manifest = json.loads((demo / part / "run-manifest.json").read_text())
        assert manifest["stack"] == {"name": "test", "instance_type": "cpu"}  # submitted to the test stack
        assert manifest["git"]["commit"] and manifest["inputs"]
    shards = json.loads((demo / "train" / "run-manifest.json").read_text())["inputs"]
    assert any(item["path"].endswith("manifest.json") for item in shards)


def test_reproducing_the_demo_pipeline_gives_byte_identical_shards(demo: Path, tmp_path: Path) -> None:
    manifest = demo / "pipeline" / "run-manifest.json"
    result = strata("reproduce", str(manifest), "--out", str(tmp_path / "again"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '"identical": true' in result.stdout
    original = json.loads((demo / "pipeline" / "shards" / "manifest.json").read_text())
    again = json.loads((tmp_path / "again" / "shards" / "manifest.json").read_text())
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in original["shards"]]


def test_nothing_is_left_running(demo: Path) -> None:
    assert not (TEST_STATE_DIR / "ray.pid").exists()
    assert_nothing_left_running(None)
