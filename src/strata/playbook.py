"""Run the Ansible playbooks through ansible-runner and report failures by host and task."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner

from strata.errors import ClusterError

logger = logging.getLogger(__name__)
PLAYBOOK_DIR = Path("playbooks")


def run_playbook(
    playbook: Path, inventory: Path, extravars: dict[str, Any], private_dir: Path, *, check: bool = False
) -> dict[str, dict[str, int]]:
    """Run `playbook` on `inventory` (in check mode: change nothing); return per-host stats.

    Raises ClusterError naming the first host and task that failed or were unreachable.
    """
    if not playbook.is_file():
        raise ClusterError(f"{playbook}: playbook not found; run strata from the repository root")
    private_dir.mkdir(parents=True, exist_ok=True)
    # ansible-playbook must come from the same environment as strata.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    failures: list[str] = []

    def on_event(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        kind = event.get("event", "")
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            res = data.get("res", {})
            message = " ".join(str(res.get(k, "")).strip() for k in ("msg", "stderr")).strip()
            failures.append(f"host {data.get('host')}: task '{data.get('task')}' failed: {message}".strip())
        elif kind == "playbook_on_task_start":
            logger.info("ansible: %s", data.get("task"))
        return True

    runner = ansible_runner.run(
        private_data_dir=str(private_dir),
        playbook=str(playbook.resolve()),
        inventory=str(inventory.resolve()),
        extravars=extravars,
        quiet=True,
        event_handler=on_event,
        cmdline="--check" if check else None,
        envvars={
            # Two equal keys in a playbook, vars file or inventory are an error, not "last one wins".
            "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
            # One SSH command per module instead of four (temporary directory, copy, run,
            # remove); needs no `requiretty` in sudoers, which current distributions do not set.
            "ANSIBLE_PIPELINING": "True",
            # Facts are gathered once per host and run, not again in each of site.yml's plays.
            "ANSIBLE_GATHERING": "smart",
        },
    )
    if runner.rc != 0 or failures:
        detail = failures[0] if failures else f"ansible-playbook exited with {runner.rc}"
        raise ClusterError(f"{playbook} on {inventory}: {detail} (full log: {private_dir}/artifacts)")
    stats: dict[str, dict[str, int]] = {}
    for key, per_host in (runner.stats or {}).items():
        for host, count in per_host.items():
            stats.setdefault(host, {})[key] = count
    return stats
