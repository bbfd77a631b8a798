"""Helpers for tests that start real processes: run the CLI, check that nothing is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from strata.local_ray import session_members

TEST_STACK = "tests/fixtures/Pulumi.test.yaml"
TEST_STATE_DIR = Path("/tmp/strata-ray-test")  # ray.state_dir in the test stack
TEST_PORTS = (26379, 28265)


def strata(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run the `strata` CLI of this environment; output is captured as text."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "strata", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left_running(pid: int | None) -> None:
    """The recorded Ray pid is gone, no process of its session remains, and the ports are closed."""
    assert not (TEST_STATE_DIR / "ray.pid").exists()
    if pid is not None:
        assert not Path(f"/proc/{pid}").exists()
        assert session_members(pid) == []
    for port in TEST_PORTS:
        assert not port_open(port), f"port {port} still open"
