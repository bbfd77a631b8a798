"""A private Ray for the pipeline tests that run Ray Data stages: started by this process on
loopback when the first of them runs, and stopped after the last test of tests/pipeline (a
package: see its __init__.py), so one start serves every module and it never outlives the
pipeline tests (`ray.shutdown` ends only the processes `ray.init` started)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[None]:
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
        yield
    finally:
        ray.shutdown()
