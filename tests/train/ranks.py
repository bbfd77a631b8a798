"""Run a function on several CPU ranks (gloo), each in its own spawned process."""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import time
from collections.abc import Callable
from typing import Any


def join_group(rank: int, world: int, port: int) -> None:
    """Environment torch.distributed and DeepSpeed read to form the group on loopback."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )


def run_ranks(target: Callable[..., Any], world: int, *args: Any) -> list[Any]:
    """`target(rank, world, port, *args)` on `world` processes; their return values by rank."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    ranks = [
        spawn.Process(target=_put, args=(results, target, rank, world, port, *args)) for rank in range(world)
    ]
    for process in ranks:
        process.start()
    out = []
    deadline = time.monotonic() + 300
    while len(out) < world:
        try:
            out.append(results.get(timeout=1))
        except queue.Empty:
            failed = [rank for rank, p in enumerate(ranks) if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for process in ranks:  # the others wait on a collective the failed rank left
                    process.terminate()
                raise AssertionError(f"ranks {failed} failed" if failed else "ranks timed out") from None
    out.sort()
    for process in ranks:
        process.join(timeout=60)
        assert process.exitcode == 0
    return [value for _, value in out]


def _put(results: Any, target: Callable[..., Any], rank: int, world: int, port: int, *args: Any) -> None:
    results.put((rank, target(rank, world, port, *args)))
