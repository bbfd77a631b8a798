"""A private Ray head for `strata run`: started for one job, token auth on, stopped by PID.

The head runs as `ray start --head --block` in a session of its own, like the
nodes the `ray` role starts; the job runs in a child process that connects to it,
so Ray's auth settings are in place before Ray is imported there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from strata.errors import ClusterError
from strata.ports import free_port

logger = logging.getLogger(__name__)
READY_LINE = "block forever"


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY_LINE in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise ClusterError(f"the local Ray head exited during start:\n{tail}")
        time.sleep(0.5)
    raise ClusterError(f"the local Ray head was not ready after {timeout_s:.0f} s; see {log}")


def session_members(session_id: int) -> list[int]:
    """PIDs of the processes in a session (the session of `ray start` is its leader's PID)."""
    members = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if proc.name.isdigit() and len(fields) > 3 and int(fields[3]) == session_id:
            members.append(int(proc.name))
    return members


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """A SIGTERM to this process inside the block is delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    received: list[FrameType | None] = []
    previous = signal.signal(signal.SIGTERM, lambda _signum, frame: received.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received and callable(previous):
            previous(signal.SIGTERM, received[0])
        elif received and previous == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGTERM)


def _stop_session(proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """SIGTERM the head (Ray drains and stops its processes), wait for its whole session to exit.
    A SIGTERM to Strata meanwhile waits until the session is gone (else the head is orphaned)."""
    with _sigterm_held():
        _terminate_session(proc, timeout_s)


def _terminate_session(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not session_members(proc.pid):
            return
        time.sleep(0.5)
    for pid in session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def local_ray(num_cpus: int | None = None, object_store_mib: int = 512) -> Iterator[dict[str, str]]:
    """Start a Ray head on loopback; yield the environment a job process needs to join it."""
    temp = Path(tempfile.mkdtemp(prefix="strata-ray-", dir="/tmp"))  # short: Ray's socket paths
    token = temp / "auth_token"
    token.write_text(secrets.token_hex(32), encoding="utf-8")
    token.chmod(0o600)
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "5",
    }
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
        f"--num-cpus={num_cpus or os.cpu_count()}", f"--object-store-memory={object_store_mib * 2**20}",
        f"--temp-dir={temp / 'tmp'}", "--disable-usage-stats",
    ]  # fmt: skip
    log = temp / "ray.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    logger.info("starting a local Ray head (pid %d, port %d)", proc.pid, port)
    try:
        _wait_ready(proc, log, timeout_s=120)
        yield {**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    finally:
        _stop_session(proc)
        logger.info("stopped the local Ray head (pid %d)", proc.pid)
        shutil.rmtree(temp, ignore_errors=True)
