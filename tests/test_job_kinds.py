"""The table of job kinds: every kind the spec loads has a row; paths are resolved and outputs
redirected through it; a job refused by its checks writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from strata.errors import JobError
from strata.job_kinds import KINDS, RunTarget, job_from_data, output_dir, redirect, resolve_paths
from strata.jobs import execute
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.spec import PipelineJob, SweepJob, TrainJob
from strata.spec.load import JOB_KINDS
from strata.storage import Location


def test_every_job_kind_the_spec_loads_has_a_row() -> None:
    assert {name: row.spec for name, row in KINDS.items()} == JOB_KINDS


def pipeline_job(paths: list[str], out: str) -> PipelineJob:
    return PipelineJob.model_validate(
        {"kind": "pipeline", "name": "p", "input": {"paths": paths}, "output": {"dir": out}}
    )


def test_local_paths_become_absolute_and_uris_stay() -> None:
    job = resolve_paths(pipeline_job(["data/demo/corpus.jsonl", "s3://bucket/y.jsonl"], "runs/p"))
    assert job.input.paths == [str(Path("data/demo/corpus.jsonl").resolve()), "s3://bucket/y.jsonl"]
    assert job.output.dir == str(Path("runs/p").resolve())
    assert job.collect.dir == ""  # unset stays unset


def test_a_tokenizer_file_is_made_absolute_and_fingerprinted(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    file = tmp_path / "tokenizer.json"
    Tokenizer(models.WordLevel({"[UNK]": 0, "</s>": 1}, unk_token="[UNK]")).save(str(file))
    relative = os.path.relpath(file)
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "p",
            "input": {"paths": ["data/demo/corpus.jsonl"]},
            "tokenizer": {"path": relative},
            "output": {"dir": "runs/p"},
        }
    )
    resolved = resolve_paths(job)
    assert resolved.tokenizer.path == str(file)
    assert KINDS["pipeline"].input_files(resolved)[-1] == file
    file.unlink()
    with pytest.raises(JobError, match=r"key `tokenizer.path`: .*tokenizer.json does not exist"):
        KINDS["pipeline"].input_files(resolved)


def test_redirect_moves_only_the_output(tmp_path: Path) -> None:
    job = pipeline_job(["data/demo/corpus.jsonl"], "runs/p")
    moved = redirect(job, tmp_path / "again")
    assert output_dir(moved) == Location(str(tmp_path / "again"))
    assert output_dir(redirect(job, "s3://bucket/runs/p")).url == "s3://bucket/runs/p"
    assert moved.model_copy(update={"output": job.output}) == job


def test_a_recorded_job_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(JobError, match=r"m.json: key `kind`: got 'nope'; allowed: pipeline, train, sweep"):
        job_from_data({"kind": "nope"}, "m.json")


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    """Shards of 300 tokens: fewer than one sample of 512."""
    docs = [TokenizedDocument(np.arange(1, 100, dtype=np.uint16), "en", "web") for _ in range(3)]
    out = tmp_path / "shards"
    write_shards(docs=docs, out_dir=out, tokens_per_shard=10_000, seed=0, vocab_size=256, eot_id=0)
    return out


def refused_jobs(tmp_path: Path, shards: Path) -> dict[str, PipelineJob | TrainJob | SweepJob]:
    empty = tmp_path / "empty"
    empty.mkdir()
    common = {"data": {"shards": str(shards)}, "output": {"dir": str(tmp_path / "out")}}
    return {
        "pipeline": pipeline_job([str(empty)], str(tmp_path / "out")),
        "train": TrainJob.model_validate(
            {"kind": "train", "name": "t", "model": {"seq_len": 512}, "steps": 2, **common}
        ),
        "sweep": SweepJob.model_validate(
            {
                "kind": "sweep",
                "name": "s",
                "seq_len": 512,
                "models": [{"n_layers": 1, "d_model": 16, "n_heads": 2}] * 2,
                "tokens": [1000, 2000],
                **common,
            }
        ),
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_job_refused_before_it_starts_writes_nothing(kind: str, tmp_path: Path, shards: Path) -> None:
    job = refused_jobs(tmp_path, shards)[kind]
    reason = "hold no files of a known format" if kind == "pipeline" else "less than one sample of 513"
    with pytest.raises(JobError, match=reason):
        execute(job, RunTarget())
    assert not (tmp_path / "out").exists()


def test_a_jax_job_on_gpu_workers_is_refused_before_it_starts(tmp_path: Path) -> None:
    """Ray schedules JAX processes on TPU hosts or CPUs; GPUs train with DeepSpeed."""
    job = TrainJob.model_validate(
        {
            "kind": "train",
            "name": "tpu",
            "backend": "jax",
            "model": {"family": "llama"},
            "steps": 2,
            "data": {"shards": str(tmp_path)},
            "workers": {"num_workers": 1, "use_gpu": True},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    with pytest.raises(JobError, match=r"key `workers\.use_gpu`: backend jax runs on TPU hosts or CPUs"):
        KINDS["train"].prepare(job, RunTarget())
