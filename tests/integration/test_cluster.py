"""`strata up` / `strata down` on this machine: Ansible starts a token-protected Ray head on
loopback, a second `up` changes nothing, and `down` stops exactly what `up` started. One `up`
serves the tests of this module, which run in order; the last brings the cluster down."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import (
    TEST_STACK,
    TEST_STATE_DIR,
    SharedRay,
    assert_nothing_left_running,
    port_open,
    strata,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def up(shared_ray: SharedRay) -> Iterator[dict[str, subprocess.CompletedProcess[str] | None]]:
    """The first `strata up` of the test stack; `down` after the module unless a test did."""
    shared_ray.stop()  # its agent port is the stack head's
    state: dict[str, subprocess.CompletedProcess[str] | None] = {"up": strata("up", TEST_STACK), "down": None}
    try:
        yield state
    finally:
        if state["down"] is None:
            strata("down", TEST_STACK)


def test_up_starts_a_head_whose_token_is_never_logged(
    up: dict[str, subprocess.CompletedProcess[str] | None],
) -> None:
    first = up["up"]
    assert first is not None and first.returncode == 0, first and first.stderr
    assert (TEST_STATE_DIR / "ray.pid").is_file()
    assert port_open(28265)
    connection = json.loads(Path(".strata/test/connection.json").read_text())
    assert connection["dashboard_url"] == "http://127.0.0.1:28265"
    token = TEST_STATE_DIR / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text()) == 64
    assert Path(connection["token_path"]).read_text() == token.read_text()
    assert token.read_text() not in first.stdout + first.stderr  # never logged


def test_a_second_up_changes_nothing(up: dict[str, subprocess.CompletedProcess[str] | None]) -> None:
    pid = int((TEST_STATE_DIR / "ray.pid").read_text())
    second = strata("up", TEST_STACK)
    assert second.returncode == 0, second.stderr
    assert "localhost: ready (changed=0)" in second.stdout
    assert int((TEST_STATE_DIR / "ray.pid").read_text()) == pid


def test_the_job_api_refuses_requests_without_the_token(
    up: dict[str, subprocess.CompletedProcess[str] | None],
) -> None:
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen("http://127.0.0.1:28265/api/jobs/", timeout=10)
    assert info.value.code == 401


def test_a_failing_submitted_job_exits_2_and_names_the_job(
    up: dict[str, subprocess.CompletedProcess[str] | None], tmp_path: Path
) -> None:
    job = tmp_path / "train.yaml"
    job.write_text(
        "kind: train\nname: no-shards\nsteps: 2\n"
        f"data: {{shards: {tmp_path / 'missing'}}}\noutput: {{dir: {tmp_path / 'out'}}}\n"
    )
    result = strata("submit", str(job), "--stack", TEST_STACK)
    assert result.returncode == 2
    assert "job no-shards" in result.stderr and "FAILED" in result.stderr
    assert "no manifest.json; run the pipeline job" in result.stdout + result.stderr  # the job's own log


def test_down_stops_everything_up_started(up: dict[str, subprocess.CompletedProcess[str] | None]) -> None:
    # Runs last among the tests of `up`: it brings the cluster down.
    pid = int((TEST_STATE_DIR / "ray.pid").read_text())
    up["down"] = down = strata("down", TEST_STACK)
    assert down.returncode == 0, down.stderr
    assert_nothing_left_running(pid)


def test_submit_without_a_running_cluster_says_to_run_up() -> None:
    result = strata("submit", "jobs/demo/pipeline.yaml", "--stack", "tests/fixtures/Pulumi.nothing.yaml")
    assert result.returncode == 2
    assert "is not up" in result.stderr and "strata up" in result.stderr
