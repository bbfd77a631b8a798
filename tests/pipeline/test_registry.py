"""The stage registry: drops are counted under the stage that made them, every quality rule
set of the spec is a stage, and resume fingerprints follow the sections before each checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.registry import (
    DATASET_STAGES,
    DOCUMENT_STAGES,
    STAGES,
    record_drops,
    record_drops_in_table,
)
from strata.pipeline.resume import StageStore
from strata.pipeline.stats import NO_TOKENS, pipeline_stats
from strata.spec.pipeline import PipelineJob
from strata.spec.quality import GopherQualitySpec, GopherRepetitionSpec, QualitySpec

PROSE = (
    "The river rose through the night and by morning the lower town was under water, "
    "so the families who lived near the mill carried what they could to the church on the hill."
)


def make_job(tmp_path: Path, **sections: object) -> PipelineJob:
    return PipelineJob.model_validate(
        {"kind": "pipeline", "name": "t", "input": {"paths": [str(tmp_path)]}, "output": {"dir": "out"}}
        | sections
    )


def test_gopher_repetition_drops_are_never_counted_under_gopher_quality(tmp_path: Path) -> None:
    texts = [
        "the same line again\n" * 20,  # repeated lines: Gopher repetition
        # Too few words for Gopher quality; long enough that its first n-grams, which count
        # even once (datatrove), stay under Gopher repetition's shares.
        "It is a note that says very little about the weather in our small town this year.",
        PROSE,
        PROSE + " One more sentence.",
    ]
    batch = {
        "status": np.array(["", "", "", ""], object),
        "text": np.array(texts, object),
        "language": np.array(["en"] * 4, object),
        "dropped_by": np.array([""] * 4, object),
    }
    batch = record_drops("gopher_repetition")(GopherRepetition(GopherRepetitionSpec())(batch))
    batch = record_drops("gopher")(GopherQuality(GopherQualitySpec(min_words=20))(batch))
    statuses = [str(s) for s in batch["status"]]
    # A rule set is free to name a reason that starts like another stage's prefix.
    statuses[3] = "dropped_gopher_repetition_like"
    batch["dropped_by"][3] = "gopher"
    assert statuses[:3] == ["dropped_gopher_repetition_dup_line_frac", "dropped_gopher_too_few_words", ""]

    stats = pipeline_stats(
        job=make_job(tmp_path),
        counts=[
            {
                "dropped_by": str(by),
                "status": status,
                "language": "en",
                "documents": 1,
                "tokens": 0,
                "bytes": 0,
            }
            for by, status in zip(batch["dropped_by"], statuses, strict=True)
        ],
        manifest=NO_TOKENS,
        reports={},
        balance={},
        seconds=0.0,
    )
    stages = stats["stages"]
    assert stages["gopher_repetition"]["dropped_by_reason"] == {"dup_line_frac": 1}
    assert stages["gopher"]["dropped_by_reason"] == {"repetition_like": 1, "too_few_words": 1}
    assert [stages[s]["kept"] for s in ("read", "gopher_repetition", "gopher", "minhash_dedup")] == [
        4,
        3,
        1,
        1,
    ]


def test_every_quality_rule_set_of_the_spec_is_one_stage(tmp_path: Path) -> None:
    quality = [s.section.removeprefix("quality.") for s in STAGES if s.section.startswith("quality.")]
    assert sorted(quality) == sorted(QualitySpec.model_fields)
    assert len({s.name for s in STAGES}) == len({s.drops for s in STAGES}) == len(STAGES)
    job = make_job(tmp_path)
    for stage in STAGES:
        stage.spec(job)  # every section exists


def test_a_disabled_stage_is_skipped(tmp_path: Path) -> None:
    job = make_job(tmp_path, quality={"c4": {"enabled": True}, "fineweb": {"enabled": False}})
    enabled = {s.name: s.enabled(job) for s in STAGES}
    assert enabled["c4"] and not enabled["fineweb"] and enabled["read"]


def test_checkpoint_fingerprints_cover_the_stages_up_to_them(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    files = [str(tmp_path / "a.jsonl")]

    def fingerprints(**sections: object) -> dict[str, str]:
        return StageStore(tmp_path / "out", make_job(tmp_path, **sections), files).fingerprints

    base = fingerprints()
    assert set(base) == {s.checkpoint for s in STAGES if s.checkpoint} == {"filtered", "deduplicated"}
    for quality in QualitySpec.model_fields:
        changed = fingerprints(quality={quality: {"languages": ["xx"]}})
        assert changed["filtered"] != base["filtered"] and changed["deduplicated"] != base["deduplicated"]
    near = fingerprints(dedup={"minhash": {"threshold": 0.7}})
    assert near["filtered"] == base["filtered"] and near["deduplicated"] != base["deduplicated"]
    assert fingerprints(tokenizer={"vocab_size": 4096}) == base


def test_the_per_row_stages_lead_and_run_in_groups(tmp_path: Path) -> None:
    """Read first, then only per-row stages until the first Dataset stage; no checkpoint among
    them (their rows are kept group by group instead)."""
    assert DOCUMENT_STAGES[0].name == "read" and DOCUMENT_STAGES + DATASET_STAGES == STAGES
    assert all(s.per_row is not None and s.apply is None for s in DOCUMENT_STAGES[1:])
    assert all(s.apply is not None and s.per_row is None for s in DATASET_STAGES)
    assert not any(s.checkpoint for s in DOCUMENT_STAGES)
    assert DATASET_STAGES[0].checkpoint == "filtered"  # the groups' rows are dropped after it


def test_group_fingerprints_cover_the_per_row_stages_and_the_group_files_only(tmp_path: Path) -> None:
    files = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text('{"text": "x"}\n')
        files.append(str(tmp_path / f"{name}.jsonl"))

    def fingerprints(**sections: object) -> list[str]:
        store = StageStore(tmp_path / "out", make_job(tmp_path, **sections), files)
        return [store.group_fingerprint([0]), store.group_fingerprint([1])]

    base = fingerprints()
    assert base[0] != base[1]
    assert fingerprints(quality={"gopher": {"min_words": 7}}) != base
    assert fingerprints(dedup={"minhash": {"threshold": 0.7}}) == base  # after the groups
    (tmp_path / "b.jsonl").write_text('{"text": "changed"}\n')
    changed = fingerprints()
    assert changed[0] == base[0] and changed[1] != base[1]


def test_drops_are_recorded_alike_in_numpy_batches_and_arrow_tables() -> None:
    status = ["", "dropped_minhash_duplicate", "dropped_c4_curly_bracket", ""]
    dropped_by = ["", "", "c4", ""]
    batch = {"status": np.array(status, object), "dropped_by": np.array(dropped_by, object)}
    table = pa.table({"status": status, "dropped_by": dropped_by, "text": ["a", "b", "c", "d"]})
    recorded = record_drops_in_table("minhash_dedup")(table)
    expected = ["", "minhash_dedup", "c4", ""]
    assert (
        recorded["dropped_by"].to_pylist()
        == expected
        == list(record_drops("minhash_dedup")(batch)["dropped_by"])
    )
    assert recorded.column_names == table.column_names and recorded["text"] == table["text"]
