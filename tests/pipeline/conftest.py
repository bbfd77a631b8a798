"""A private Ray for the pipeline tests that run Ray Data stages: started by this process on
loopback for each test module, and stopped after it (`ray.shutdown` ends only the processes
`ray.init` started), so it never outlives the pipeline tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
import ray


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
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
