"""A private Ray for the pipeline tests that run Ray Data stages: started by this process on
loopback when the first of them runs, and stopped after the last test of tests/pipeline (a
package: see its __init__.py), so one start serves every module and it never outlives the
pipeline tests (`ray.shutdown` ends only the processes `ray.init` started).

Ray starts with the settings of the object store of test_object_storage.py in its
environment (an S3 endpoint on a loopback port chosen here, where that module starts its
server, and test credentials), so its workers inherit them as workers inherit the caller's
environment under `strata run`: credentials never travel in jobs or Ray's runtime_env.

`multilingual_run` is the one local run of the multilingual job (tests/pipeline/helpers.py):
test_run.py checks it, test_object_storage.py compares the same job on `s3://` with it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipeline.helpers import BALANCED, MultilingualRun, multilingual_job


@pytest.fixture(scope="package")
def object_store_env() -> Iterator[dict[str, str]]:
    """The environment of the S3 server of test_object_storage.py, for this process and Ray."""
    from strata.ports import free_port

    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "strata-test-key",
        "AWS_SECRET_ACCESS_KEY": "strata-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="package")
def ray_cluster(object_store_env: dict[str, str]) -> Iterator[Path]:
    """Yields Ray's temp dir (its sessions, logs included)."""
    import ray  # here, not at import: the unit tests of this folder need no Ray

    temp = tempfile.mkdtemp(prefix="strata-ray-", dir="/tmp")  # short: Ray's socket paths
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        object_store_memory=512 * 2**20,
        logging_level="WARNING",
        configure_logging=False,
    )
    try:
        yield Path(temp)
    finally:
        ray.shutdown()


@pytest.fixture(scope="package")
def multilingual_run(ray_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> MultilingualRun:
    """The balanced multilingual job, run once on local files."""
    from strata.pipeline.run import run_pipeline

    root = tmp_path_factory.mktemp("multilingual")
    job = multilingual_job(root, **BALANCED)
    return MultilingualRun(job=job, broken=root / "broken", out=root / "out", stats=run_pipeline(job))
