"""Naming the rank that stopped answering.

A collective that waits on a rank that died, froze or lost its node may wait far longer
than its timeout (a gloo all-reduce can wait forever), and when it does fail it says only
that it timed out. So every rank runs two small threads: a heartbeat that writes its step,
process and host into the job's rendezvous store (the TCP store the process group was made
with) every few seconds, and a watchdog. When this rank's step has run longer than
`workers.collective_timeout_s` (or a collective raised), the rank reads every heartbeat
twice: the ranks whose heartbeat did not move are named as stopped, else the ranks behind
on steps. That sentence goes to `stall_record(out, rank)`, which the driver reads when
the worker group fails (a dying worker's log lines may never reach the driver). The
watchdog then ends this worker, so Ray Train fails the worker group in minutes (and
restarts it from the last checkpoint when `checkpoint.max_failures` allows).
The store lives in rank 0's process: when rank 0 is the one that stopped, the store stops
answering too (its calls then block with no timeout), so the watchdog reads it from a
helper thread with a deadline, and a store that does not answer names rank 0.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch.distributed as dist

from strata.errors import JobError
from strata.files import atomic_write_text

logger = logging.getLogger(__name__)
STALL_EXIT = 75  # the exit status of a worker that gave up on a stopped rank
STALLS = "stalls"  # the folder of the watchdogs' sentences in the job's output


def stall_record(out: Path, rank: int) -> Path:
    """Where rank `rank` writes which ranks it found stopped."""
    return out / STALLS / f"rank-{rank}.txt"


def read_stall_records(out: Path) -> list[str]:
    """The ranks' diagnoses of this run ("rank 1 reports: rank 0 (pid …) stopped answering
    …"), by rank; empty when no rank found another stopped."""
    files = sorted((out / STALLS).glob("rank-*.txt"), key=lambda f: int(f.stem.split("-")[1]))
    return [f"{f.stem.replace('-', ' ')} reports: {f.read_text().strip()}" for f in files]


class StallWatch:
    """Started on every rank after the process group exists; `close()` stops its threads."""

    def __init__(self, collective_timeout_s: int, out: Path | None = None, interval_s: float = 2.0) -> None:
        self.record = None if out is None else stall_record(out, dist.get_rank())
        self.store = dist.distributed_c10d._get_default_store()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.store_host: str | None = None  # rank 0's "pid N on host", once its heartbeat was read
        self.me = f"pid {os.getpid()} on {socket.gethostname()}"
        self.timeout_s, self.interval_s = collective_timeout_s, interval_s
        self.step = 0
        self.step_started: float | None = None  # monotonic time; None between steps
        self._closed = threading.Event()
        self._beat()
        self.store_host = self.me if self.rank == 0 else self._first_beat_of_rank_0()
        for target in (self._heartbeat, self._watchdog):
            threading.Thread(target=target, name=f"strata-{target.__name__[1:]}", daemon=True).start()

    def _first_beat_of_rank_0(self) -> str | None:
        """Rank 0's "pid N on host", read once at the start (every rank beats in its
        constructor), so that a rank 0 stopped in the first steps is still named by pid; None
        if it has not beaten within the collective timeout (the heartbeat thread reads it later)."""
        key = "strata/heartbeat/0"
        with contextlib.suppress(Exception):  # a timeout: rank 0 is late or gone
            self.store.wait([key], datetime.timedelta(seconds=self.timeout_s))
            return str(json.loads(self.store.get(key))["who"])
        return None

    @contextlib.contextmanager
    def step_running(self, step: int) -> Iterator[None]:
        """Mark a step's span; a failure inside is re-raised naming the ranks that stopped."""
        self.step, self.step_started = step, time.monotonic()
        try:
            yield
        except Exception as exc:
            stopped = self.diagnose()
            if stopped is None:
                raise
            self._record(stopped)
            raise JobError(f"{stopped}; the step failed with: {exc}") from exc
        finally:
            self.step_started = None

    def close(self) -> None:
        self._closed.set()

    def diagnose(self) -> str | None:
        """Which ranks stopped beating, else which are behind, as one sentence; None if none."""
        readings = self._two_readings()
        if readings is None:  # rank 0's process holds the store: it is what stopped
            return (
                f"rank 0 ({self.store_host or 'its process'}) stopped answering during step "
                f"{self.step + 1} (its rendezvous store does not answer)"
            )
        first, second = readings
        silent = [r for r in range(self.world) if r not in second or first.get(r) == second[r]]
        if silent:
            names = ", ".join(f"rank {r} ({(first.get(r) or {}).get('who', 'never seen')})" for r in silent)
            return f"{names} stopped answering during step {self.step + 1} (no heartbeat)"
        steps = {r: beat["step"] for r, beat in second.items()}
        behind = [r for r, s in steps.items() if s < max(steps.values())]
        if behind:
            names = ", ".join(f"rank {r} ({second[r]['who']}) at step {steps[r] + 1}" for r in behind)
            return f"{names} fell behind the others (step {max(steps.values()) + 1}) and stopped answering"
        return None

    def _record(self, stopped: str) -> None:
        """Leave the diagnosis where the driver reads it (see the module docstring)."""
        if self.record is None:
            return
        with contextlib.suppress(OSError):  # the log line or the raised error still says it
            self.record.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.record, stopped + "\n")

    def _two_readings(self) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]] | None:
        """Every heartbeat, read twice a few beats apart; None if the store did not answer."""
        first = self._heartbeats_within(self.timeout_s)
        if first is None:
            return None
        time.sleep(2 * self.interval_s)
        second = self._heartbeats_within(self.timeout_s)
        return None if second is None else (first, second)

    def _heartbeats_within(self, seconds: float) -> dict[int, dict[str, Any]] | None:
        """`_heartbeats()`, or None when the store does not answer within `seconds`: a stopped
        store host leaves its clients' calls blocked with no timeout (the reading thread is
        left so; the watchdog ends the process soon after)."""
        read: dict[str, dict[int, dict[str, Any]]] = {}

        def reader() -> None:
            with contextlib.suppress(Exception):  # a store that is gone answers nothing either
                read["beats"] = self._heartbeats()

        thread = threading.Thread(target=reader, name="strata-heartbeat-reader", daemon=True)
        thread.start()
        thread.join(seconds)
        if "beats" not in read:
            logger.warning("rank %d: the rendezvous store did not answer within %.0f s", self.rank, seconds)
        return read.get("beats")

    def _heartbeats(self) -> dict[int, dict[str, Any]]:
        """Every rank's last heartbeat (a rank that never wrote one is missing); raises when
        the store does not answer within its timeout."""
        keys = {r: f"strata/heartbeat/{r}" for r in range(self.world)}
        return {r: json.loads(self.store.get(key)) for r, key in keys.items() if self.store.check([key])}

    def _beat(self) -> None:
        beat = {"step": self.step, "who": self.me, "time": time.time()}
        self.store.set(f"strata/heartbeat/{self.rank}", json.dumps(beat))

    def _heartbeat(self) -> None:
        while not self._closed.wait(self.interval_s):
            with contextlib.suppress(Exception):  # the store's host may be gone; the watchdog says so
                self._beat()
                if self.store_host is None and self.store.check(["strata/heartbeat/0"]):
                    self.store_host = json.loads(self.store.get("strata/heartbeat/0"))["who"]

    def _watchdog(self) -> None:
        while not self._closed.wait(self.interval_s):
            started = self.step_started
            if started is None or time.monotonic() - started < self.timeout_s:
                continue
            waited = time.monotonic() - started
            stopped = self.diagnose() or "every rank is alive, but a collective among them stopped"
            logger.error("rank %d: step %d waited %.0f s: %s", self.rank, self.step + 1, waited, stopped)
            self._record(stopped)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(STALL_EXIT)
