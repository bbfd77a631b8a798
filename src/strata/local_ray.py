"""A private Ray instance for `strata run`: started in-process, token auth on, stopped on exit."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ray

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def local_ray(num_cpus: int | None = None, object_store_mib: int = 512) -> Iterator[None]:
    """Start Ray on this machine for the duration of the block; `ray.shutdown` stops what it started."""
    temp = Path(tempfile.mkdtemp(prefix="strata-ray-", dir="/tmp"))  # short: Ray's socket paths
    token = temp / "auth_token"
    token.write_text(secrets.token_hex(32), encoding="utf-8")
    token.chmod(0o600)
    saved = {
        k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED")
    }
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    try:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            object_store_memory=object_store_mib * 2**20,
            include_dashboard=False,
            _temp_dir=str(temp / "tmp"),
            _node_ip_address="127.0.0.1",
            logging_level=logging.WARNING,
        )
        logger.info("started a local Ray (temp dir %s)", temp)
        yield
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)
