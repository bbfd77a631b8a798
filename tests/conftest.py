"""Shared fixtures. Tests run from the repository root (paths in declarations are relative to it).

Markers say what a test starts (pyproject.toml lists them): `integration` (Ray, Ansible, the
`strata` commands that run jobs), `ranks` (torch.distributed / DeepSpeed ranks without Ray)
and `system` (Slurm, Munge, sshd). `make test-unit` runs the tests that carry none. Tests
under tests/integration and tests/system, and tests using the `ray_cluster` fixture, are
marked here; any other test that starts one of these without its marker fails, naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
os.chdir(REPO)

STARTS_PROCESSES = ("integration", "ranks", "system")
# Programs that start Ray, ranks or system daemons (Ansible alone, as
# the playbook syntax and check-mode tests run it, starts nothing).
PROGRAMS = {"ray", "deepspeed", "torchrun", "slurmctld", "slurmd", "slurmdbd", "munged", "sshd", "mariadbd"}
STRATA_JOBS = {"run", "exec", "demo", "reproduce"}  # start a private Ray head or join one


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests whose place or fixtures say what they start."""
    for item in items:
        parts = item.path.relative_to(REPO).parts
        if parts[:2] == ("tests", "integration") or "ray_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
        if parts[:2] == ("tests", "system"):
            item.add_marker(pytest.mark.system)


def _started(args: Any) -> str | None:
    """What a command line would start that needs a marker, or None."""
    argv = [str(a) for a in args] if isinstance(args, list | tuple) else str(args).split()
    if argv and Path(argv[0]).name in PROGRAMS:
        return Path(argv[0]).name
    if argv[1:3] == ["-m", "strata"] and len(argv) > 3 and argv[3] in STRATA_JOBS:
        return f"strata {argv[3]}"
    return None


@pytest.fixture(autouse=True)
def unmarked_tests_start_nothing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """In a test without a marker of STARTS_PROCESSES, refuse what would need one: Ray, a
    process group, rank processes spawned from tests/, the commands of PROGRAMS and STRATA_JOBS."""
    if any(request.node.get_closest_marker(name) for name in STARTS_PROCESSES):
        yield
        return
    name = request.node.nodeid

    def refuse(what: str) -> None:
        pytest.fail(f"{name} starts {what}: mark it integration (Ray), ranks (torch.distributed) or system")

    popen_init = subprocess.Popen.__init__

    def checked_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        started = _started(args)
        if started:
            refuse(started)
        popen_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", checked_popen)
    if "ray" in sys.modules:
        monkeypatch.setattr(sys.modules["ray"], "init", lambda *a, **k: refuse("Ray (ray.init)"))
    if "torch.distributed" in sys.modules:
        monkeypatch.setattr(
            sys.modules["torch.distributed"], "init_process_group", lambda *a, **k: refuse("a process group")
        )
    import multiprocessing.process

    start = multiprocessing.process.BaseProcess.start

    def checked_start(self: multiprocessing.process.BaseProcess) -> None:
        module = sys.modules.get(getattr(getattr(self, "_target", None), "__module__", ""))
        if str(getattr(module, "__file__", "")).startswith(str(REPO / "tests")):
            refuse(f"processes running {module.__name__}")  # type: ignore[union-attr]
        start(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", checked_start)
    ray_before = sys.modules.get("ray")
    # A package-scoped Ray a marked test started earlier stays up: only a Ray this test started counts.
    ray_was_up = ray_before is not None and ray_before.is_initialized()
    yield
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized() and not ray_was_up:
        ray.shutdown()
        refuse("Ray (imported in the test)")


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML text into a temporary file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
