"""Fixtures of the integration tests: synthetic shards, one private Ray head for the tests
that only need a Ray to run jobs on, and one pipeline output and one ZeRO-3 training output
for the tests that read them.

Tests of what `strata run` itself does (it starts and stops its own head, survives a killed
job process, stops its Ray on SIGTERM) keep using `strata run`; the rest run their jobs with
`strata exec` (what `strata run` runs once its head is up) on the shared head, which saves a
Ray start and stop per job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import SharedRay, exec_job, make_job, train_job, write_synthetic_shards


@pytest.fixture(scope="package")
def shared_ray() -> Iterator[SharedRay]:
    head = SharedRay()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture
def ray_env(shared_ray: SharedRay) -> dict[str, str]:
    """The environment of a job process joined to the shared head."""
    return shared_ray.env()


@pytest.fixture(scope="package")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory, shared_ray: SharedRay) -> Path:
    """A folder holding corpus.jsonl (400 demo documents, a broken line, an empty text) and
    first/, the output of a pipeline job run once on it. Tests must not change either
    (one that edits the corpus restores it)."""
    root = tmp_path_factory.mktemp("pipeline-run")
    result = exec_job(make_job(root, "first"), shared_ray.env())
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="package")
def zero3_run(tmp_path_factory: pytest.TempPathFactory, shared_ray: SharedRay) -> Path:
    """The output folder of `train_job(zero=3)` on synthetic shards, run once, uninterrupted:
    what the ZeRO-3 export test reads and what the resubmission test compares with."""
    root = tmp_path_factory.mktemp("zero3")
    write_synthetic_shards(root / "shards")
    result = exec_job(train_job(root, "whole", zero=3), shared_ray.env())
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "whole"


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    """Token shards of 80 synthetic documents under tmp_path/shards (what train_job reads)."""
    return write_synthetic_shards(tmp_path / "shards")
