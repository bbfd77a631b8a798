"""A rank that stops answering is named by the others within seconds, also when it is rank 0,
whose process holds the job's rendezvous store (two gloo ranks; one is SIGSTOPped)."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from strata.train.stalls import read_stall_records
from tests.train.ranks import join_group

pytestmark = pytest.mark.ranks  # rank processes on a rendezvous store

WORLD = 2


def _rank(rank: int, port: int, log: str, out: str, ready: Any) -> None:
    """All-reduce in steps under a StallWatch (timeout 3 s, records in `out`) until a peer
    stops; log to `log`."""
    import logging

    logging.basicConfig(filename=log, level=logging.INFO)
    join_group(rank, WORLD, port)
    import torch
    import torch.distributed as dist

    from strata.train.stalls import StallWatch

    dist.init_process_group("gloo")
    watch = StallWatch(collective_timeout_s=3, out=Path(out), interval_s=0.5)
    ready.put(rank)
    for step in range(10**6):
        with watch.step_running(step):
            dist.all_reduce(torch.ones(1))
        time.sleep(0.05)


@pytest.mark.parametrize("stopped", [0, 1], ids=["store-host", "other"])
def test_the_stopped_rank_is_named_and_the_others_end(tmp_path: Path, stopped: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    logs = [tmp_path / f"rank{r}.log" for r in range(WORLD)]
    ranks = [
        spawn.Process(target=_rank, args=(r, port, str(logs[r]), str(tmp_path), ready)) for r in range(WORLD)
    ]
    for process in ranks:
        process.start()
    try:
        assert sorted(ready.get(timeout=120) for _ in ranks) == [0, 1]
        # No pause: stopped before any heartbeat thread ran, the rank is still named by pid.
        os.kill(ranks[stopped].pid, signal.SIGSTOP)
        survivor = ranks[1 - stopped]
        survivor.join(timeout=60)
        assert survivor.exitcode == 75  # STALL_EXIT: it gave up on the stopped rank
    finally:
        for process in ranks:
            if process.is_alive():
                process.kill()
            process.join(timeout=30)
    message = logs[1 - stopped].read_text()
    named = re.search(r"rank (\d) \(pid (\d+) on [^)]+\) stopped answering", message)
    assert named is not None, message[-2000:]
    assert (int(named.group(1)), int(named.group(2))) == (stopped, ranks[stopped].pid)
    # The same sentence is on disk for the driver, which may never receive a dying worker's log.
    records = read_stall_records(tmp_path)
    assert len(records) == 1 and records[0].startswith(f"rank {1 - stopped} reports: ")
    assert named.group(0) in records[0]
