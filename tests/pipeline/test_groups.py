"""The per-row chain of one group of input files, in this process (no Ray): every stage runs on
every batch in order, drops are recorded by stage, and a stage's counts are summed across
batches and files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from strata.pipeline import groups
from strata.pipeline.groups import DocumentChain
from strata.spec.pipeline import PipelineJob

PROSE = (
    "The river rose through the night and by morning the lower town was under water, so the "
    "families who lived near the mill carried what they could to the church on the hill. "
)


def test_a_group_of_files_runs_every_stage_on_every_batch_in_input_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups, "BATCH_ROWS", 3)  # batches that cross the file boundary
    (tmp_path / "blocked.txt").write_text("casino-games.com\n")
    docs = [
        {"id": "a", "text": PROSE * 3, "url": "https://news.example.org/a"},
        {"id": "b", "text": PROSE * 3, "url": "https://www.casino-games.com/b"},
        {"id": "c", "text": PROSE * 3},
        {"id": "d", "text": "The old mill by the river was quiet that morning."},  # 10 words
    ]
    for name in ("one", "two"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs) + "{broken\n")
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "t",
            "input": {"paths": [str(tmp_path / "one.jsonl"), str(tmp_path / "two.jsonl")]},
            "url_filter": {"blocklists": [str(tmp_path / "blocked.txt")]},
            "quality": {
                "gopher_repetition": {"enabled": False},
                "gopher": {"min_words": 11},
                "c4": {"enabled": False},
                "fineweb": {"enabled": False},
            },
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    counts: dict[str, dict[str, int]] = {}
    files = [(0, str(tmp_path / "one.jsonl")), (1, str(tmp_path / "two.jsonl"))]
    table = pa.concat_tables(DocumentChain(job).tables(files, counts))

    rows = table.to_pylist()
    assert [r["order"] for r in rows] == sorted(r["order"] for r in rows) and len(rows) == 10
    judged = [(r["id"], r["dropped_by"]) for r in rows]
    assert judged[:4] == [("a", ""), ("b", "url_filter"), ("c", ""), ("d", "gopher")]
    assert judged[4][1] == "read" and rows[4]["status"] == "quarantined_invalid_json"
    assert [by for _, by in judged[5:]] == [by for _, by in judged[:5]]  # the second file alike
    assert rows[1]["status"] == "dropped_url_filter_blocked_domain"
    assert counts == {"url_filter": {"no_url": 4}}  # c and d, in each file
    assert "url_filter_no_url" not in table.column_names
