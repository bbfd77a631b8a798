"""The whole pipeline on Ray Data: real multilingual web pages (WARC) and a folder of broken
files, with language counts, quarantine counts, balancing and the stats report checked (the
package's `multilingual_run`, which test_object_storage.py compares with the same job on S3);
and inputs of which nothing survives, which end in JobError with the stats written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strata.errors import JobError
from strata.pipeline.run import run_pipeline
from strata.shards import load_manifest
from strata.spec.pipeline import PipelineJob
from tests.pipeline.helpers import LANGUAGES, MultilingualRun, multilingual_job

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]


def test_multilingual_pages_and_broken_files(multilingual_run: MultilingualRun) -> None:
    stats, out = multilingual_run.stats, multilingual_run.out
    docs = stats["documents"]
    # 12 pages; from the broken folder: 2 bad JSONL records + 1 record without text, the records
    # of the cut gzip before the cut, and one row for each broken file.
    assert docs["quarantined_invalid_utf8"] == 2  # bad.jsonl line 1 and notes.txt
    assert docs["quarantined_invalid_json"] == 1
    assert docs["quarantined_no_text"] == 1
    assert docs["quarantined_truncated_file"] == 1
    assert docs["quarantined_unreadable_file"] == 1
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert len(quarantine) == sum(v for k, v in docs.items() if k.startswith("quarantined_"))
    assert {q["source"].split("/")[-1].split(":")[0].split("#")[0] for q in quarantine} == {
        "bad.jsonl",
        "notes.txt",
        "cut.jsonl.gz",
        "table.parquet",
    }
    # Language ID: every page in its language; the short JSONL records pass as whatever they are.
    after_language = stats["stages"]["language"]["kept_by_language"]
    assert all(after_language[lang] >= 2 for lang in LANGUAGES)
    manifest = load_manifest(out / "shards")
    assert set(LANGUAGES) <= set(manifest["tokens_by_language"])
    assert manifest["total_tokens"] == stats["tokens"]["total"]
    # Balancing at α = 0.3 gives the smallest language more than its natural share.
    groups = stats["balance"]["groups"]
    smallest = min(LANGUAGES, key=lambda g: groups[g]["tokens_before"])
    assert groups[smallest]["rate"] > 1
    assert manifest["tokens_by_language"][smallest] == groups[smallest]["tokens_after"]
    assert (out / "stats" / "pipeline.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "stats" / "pipeline.json").read_text()) == stats


def test_keep_list_drops_other_languages(tmp_path: Path) -> None:
    stats = run_pipeline(multilingual_job(tmp_path, language={"keep": ["fr", "de"], "min_score": 0.5}))
    assert set(stats["tokens"]["by_language"]) == {"de", "fr"}
    assert stats["stages"]["language"]["dropped_by_reason"]["not_listed"] >= 8
    # Tokens kept after the last stage are the tokens written, less one end-of-text per document.
    last = stats["stages"]["minhash_dedup"]
    assert last["tokens_kept"] + stats["tokens"]["documents_written"] == stats["tokens"]["total"]
    assert last["tokens_kept_by_language"].keys() == {"de", "fr"}
    kept = [s["tokens_kept"] for s in stats["stages"].values()]
    assert kept == sorted(kept, reverse=True) and kept[0] > kept[-1]


def test_rehydration_repeats_kept_documents_by_cluster_size(tmp_path: Path) -> None:
    planted = [json.loads(line) for line in Path("data/demo/planted.jsonl").read_text().splitlines()]
    wanted = {p["id"] for p in planted if p["kind"] == "near"} | {
        p["original"] for p in planted if p["kind"] == "near"
    }
    lines = [
        line
        for line in Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["id"] in wanted
    ]
    corpus = tmp_path / "pairs.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "rehydrated",
            "input": {"paths": [str(corpus)]},
            "language": {"enabled": False},
            "quality": {
                "gopher_repetition": {"enabled": False},
                # Punctuation counts as words (datatrove): 0.4 keeps 156 of the 160 documents of
                # the planted pairs, code-heavy ones included.
                "gopher": {"min_alpha_words_ratio": 0.4},
                "fineweb": {"enabled": False},
            },
            "dedup": {"minhash": {"rehydrate": {2: 3}}},
            "tokenizer": {"vocab_size": 1024},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = run_pipeline(job)
    minhash = stats["stages"]["minhash_dedup"]
    pairs = minhash["cluster_size_histogram"].get("2", minhash["cluster_size_histogram"].get(2, 0))
    assert pairs >= 70
    kept = stats["documents"]["kept"]
    assert minhash["rehydration"] == {"documents_before": kept, "documents_after": kept + 2 * pairs}
    assert stats["tokens"]["documents_written"] == kept + 2 * pairs


def tiny_job(tmp_path: Path, lines: list[str]) -> PipelineJob:
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(line + "\n" for line in lines))
    return PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "tiny",
            "input": {"paths": [str(corpus)]},
            "language": {"enabled": False},
            "output": {"dir": str(tmp_path / "out")},
        }
    )


def test_nothing_survives_filtering(tmp_path: Path) -> None:
    # Every document is shorter than Gopher's 50 words; MinHash dedup is on (the default).
    text = "It is a note, number {}, that says very little about the weather in our small town."
    lines = [json.dumps({"id": f"s{i}", "text": text.format(i)}) for i in range(6)]
    with pytest.raises(
        JobError, match=r"no document of 6 survived; dropped by quality\.gopher 6 \(too_few_words 6\)"
    ):
        run_pipeline(tiny_job(tmp_path, lines))
    stats = json.loads((tmp_path / "out" / "stats" / "pipeline.json").read_text())
    assert stats["documents"] == {"total": 6, "kept": 0, "dropped_gopher_too_few_words": 6}
    assert stats["stages"]["gopher"]["dropped"] == 6 and stats["stages"]["minhash_dedup"]["kept"] == 0
    assert stats["tokens"]["total"] == 0


def test_empty_input(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="input file\\(s\\) hold no documents"):
        run_pipeline(tiny_job(tmp_path, []))
    stats = json.loads((tmp_path / "out" / "stats" / "pipeline.json").read_text())
    assert stats["documents"] == {"total": 0, "kept": 0}
