"""The steps after dedup on Ray workers: shards written by workers are byte-identical for the
same job, listed whole in the manifest, and hold every written copy once; the side files are
what one process would write; the tokenizer sample is bounded and seeded; and nothing after
dedup gathers the documents' rows into the driver."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from strata.pipeline.assemble import tokenizer_sample, write_balanced_shards
from strata.pipeline.side_files import write_side_files
from strata.shards import load_manifest, read_index
from strata.spec.pipeline import PipelineJob
from strata.spec.tokenizer import TokenizerFile

SRC = Path(__file__).parents[2] / "src" / "strata" / "pipeline"
TOKENIZER = TokenizerFile(eos_token="<|endoftext|>", eos_id=0, vocab_size=1000, sha256="0" * 64)


def make_job(tmp_path: Path, **sections: Any) -> PipelineJob:
    return PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "assemble",
            "seed": 11,
            "input": {"paths": ["data/demo/corpus.jsonl"]},  # not read here
            "shards": {"tokens_per_shard": 2048},
            "output": {"dir": str(tmp_path)},
            **sections,
        }
    )


def tokenized(n: int) -> ray.data.Dataset:
    rng = np.random.default_rng(4)
    rows = [
        {
            "id": f"d{i}",
            "order": i,
            "language": ["en", "fr", "ja"][i % 3],
            "source": "web",
            "cluster_size": 1 + (i % 4 == 0),
            "tokens": rng.integers(1, 1000, size=int(rng.integers(5, 120))).astype(np.uint16),
        }
        for i in range(n)
    ]
    return ray.data.from_items(rows, override_num_blocks=7)


def shard_documents(out: Path) -> list[bytes]:
    docs = []
    for shard in load_manifest(out)["shards"]:
        tokens = np.fromfile(out / shard["bin"], dtype="<u2")
        index = read_index(out / shard["idx"])
        docs += [
            bytes(tokens[p // 2 : p // 2 + n]) for p, n in zip(index.pointers, index.lengths, strict=True)
        ]
    return docs


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_same_job_twice_gives_identical_shards_listed_in_the_manifest(tmp_path: Path) -> None:
    job = make_job(tmp_path, dedup={"minhash": {"rehydrate": {2: 3}}})
    data = tokenized(300).materialize()
    outs = [tmp_path / "a", tmp_path / "b"]
    results = [write_balanced_shards(job, data, out_dir=o, tokenizer=TOKENIZER) for o in outs]
    manifest, rehydration, balance = results[0]
    assert results[1][0] == manifest and balance == {}
    names = sorted(p.name for p in outs[0].glob("shard_*"))
    assert names == sorted(n for s in manifest["shards"] for n in (s["bin"], s["idx"]))
    assert names == sorted(p.name for p in outs[1].glob("shard_*"))
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    assert len(manifest["shards"]) == -(-manifest["total_tokens"] // 2048) > 1
    # Every document once, those of 2-member clusters 3 times (FineWeb-2 rehydration).
    expected = []
    for row in data.iter_rows():
        expected += [bytes(row["tokens"].astype("<u2"))] * (3 if row["cluster_size"] == 2 else 1)
    assert sorted(shard_documents(outs[0])) == sorted(expected)
    assert rehydration == {"documents_before": 300, "documents_after": len(expected)}
    assert manifest["total_documents"] == len(expected)
    assert set(manifest["tokens_by_language"]) == {"en", "fr", "ja"}
    # The seed decides the shuffle.
    other = write_balanced_shards(
        job.model_copy(update={"seed": 12}), data, out_dir=tmp_path / "c", tokenizer=TOKENIZER
    )[0]
    assert [s["sha256"] for s in other["shards"]] != [s["sha256"] for s in manifest["shards"]]


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_balancing_rates_come_from_cluster_totals(tmp_path: Path) -> None:
    job = make_job(tmp_path, balance={"enabled": True, "alpha": 0.3, "max_repeats": 3})
    manifest, _, balance = write_balanced_shards(job, tokenized(300), out_dir=tmp_path, tokenizer=TOKENIZER)
    groups = balance["groups"]
    assert set(groups) == {"en", "fr", "ja"}
    assert {g: groups[g]["tokens_after"] for g in groups} == manifest["tokens_by_language"]


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_side_files_are_written_in_input_order(tmp_path: Path) -> None:
    statuses = ["", "quarantined_invalid_json", "dropped_exact_duplicate", "", "dropped_minhash_duplicate"]
    rows = [
        {
            "order": i,
            "id": f"r{i}",
            "status": statuses[i % 5],
            "detail": f"f.jsonl:{i}",
            "duplicate_of": f"r{i - 1}",
        }
        for i in range(200)
    ]
    written = write_side_files(tmp_path, ray.data.from_items(rows, override_num_blocks=9))
    quarantine = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert quarantine == [{"source": f"f.jsonl:{i}", "reason": "invalid_json"} for i in range(1, 200, 5)]
    duplicates = [json.loads(line) for line in (tmp_path / "duplicates.jsonl").read_text().splitlines()]
    assert [d["id"] for d in duplicates] == [f"r{i}" for i in range(200) if i % 5 in (2, 4)]
    assert duplicates[0] == {"id": "r2", "duplicate_of": "r1", "kind": "exact"}
    assert written == 3 * 40
    assert not list(tmp_path.glob("*.parts"))


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
def test_tokenizer_sample_is_bounded_and_seeded() -> None:
    kept = ray.data.from_items(
        [{"id": f"d{i}", "text": "x" * 100} for i in range(500)], override_num_blocks=5
    )
    everything = list(tokenizer_sample(kept, 10**9, seed=1))
    assert len(everything) == 500
    sample = list(tokenizer_sample(kept, 10_000, seed=1))
    assert 0 < len(sample) <= 100
    assert list(tokenizer_sample(kept, 10_000, seed=1)) == sample


GATHERING = {"take_all", "take", "to_pandas", "iter_rows", "iter_batches", "take_batch", "ray.get"}
# Functions allowed to bring values to the driver: each gathers an aggregate (row counts, a
# report per input group, a record per shard, k-means centroids) or a bounded sample (the
# tokenizer's, a sort's sampled keys). `_partial_sums` and `_reduce_sorted` are Ray tasks and
# `with_right_columns` runs in one (a join's reduce): they run on a worker (their `take` is
# Arrow's, reordering or copying one partition's rows).
ALLOWED = {
    "totals",
    "_partial_sums",
    "_reduce_sorted",
    "with_right_columns",
    "count",
    "non_empty",
    "count_rows",
    "tokenizer_sample",
    "write_balanced_shards",
    "document_rows",
    "_non_empty",
    "sort_by",
    "trained_centroids",
}


@pytest.mark.parametrize(
    "module",
    [
        "run.py",
        "groups.py",
        "exchange.py",
        "blockwise.py",
        "aggregate.py",
        "pii.py",
        "dedup/exact.py",
        "dedup/near.py",
        "dedup/clusters.py",
        "dedup/semantic.py",
        "dedup/embed.py",
        "assemble.py",
        "stats.py",
        "side_files.py",
        "shards.py",
    ],
)
def test_no_pipeline_phase_gathers_rows_into_the_driver(module: str) -> None:
    tree = ast.parse((SRC / module).read_text())
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            calls = {
                f"ray.{node.func.attr}"
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "ray"
                else node.func.attr
                for node in ast.walk(func)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            }
            if func.name not in ALLOWED:
                assert not calls & GATHERING, f"{module}:{func.name} gathers rows: {calls & GATHERING}"
