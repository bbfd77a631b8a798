"""Loopback ports for processes Strata starts itself (a private Ray head, a one-rank world)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on loopback right now (the OS picks it; another process may take it later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
