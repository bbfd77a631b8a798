"""Stopping the local Ray head's session is not cut short by a SIGTERM to Strata itself."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from strata.local_ray import _stop_session, session_members

# Stands in for `ray start --block`: a session leader that takes a while to stop on SIGTERM.
SLOW_TO_STOP = "trap 'sleep 2; exit 0' TERM; echo ready; while true; do sleep 0.1; done"


def test_a_sigterm_during_the_stop_waits_until_the_session_is_gone() -> None:
    head = subprocess.Popen(["bash", "-c", SLOW_TO_STOP], start_new_session=True, stdout=subprocess.PIPE)
    assert head.stdout is not None and head.stdout.readline() == b"ready\n"  # its trap is set
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(SystemExit(143)))
    try:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(SystemExit):  # delivered, but only after the stop finished
            _stop_session(head, timeout_s=30)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert head.poll() == 0
    assert session_members(head.pid) == []
