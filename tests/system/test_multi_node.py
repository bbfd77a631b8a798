"""site.yml over SSH on a 2-node cluster in network namespaces: Strata's environment installed on
each node, Slurm, Ray, Ray on Slurm, health, and the data pipeline spread over both nodes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from strata.provenance import sha256_file
from tests.integration.helpers import strata
from tests.system.netns import RAY_STATE, ROOT, SLURM_CONF, STRATA_ENV, NetnsCluster
from tests.system.wheelhouse import build_wheelhouse

pytestmark = pytest.mark.system

ENV = f"export SLURM_CONF={SLURM_CONF}/slurm.conf PATH={STRATA_ENV}/venv/bin:$PATH; "
SHARED = Path("/tmp/strata-netns-shared")  # outside the nodes' private mounts: every node sees it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NetnsCluster, Path, Path]]:
    work = tmp_path_factory.mktemp("netns")
    with NetnsCluster(2) as nodes:
        SHARED.mkdir(exist_ok=True)
        inventory = nodes.write_inventory(
            # One Ray CPU per node: the pipeline's tasks must use both nodes, and the cluster has
            # the worker CPUs of this machine's single-node run (2).
            work / "inventory.yml",
            {"ray_slurm_script": f"{ROOT}/ray-on-slurm.sbatch", "ray_num_cpus": 1},
        )
        stack = work / "Pulumi.netns.yaml"
        # Bare nodes: each installs Strata's CPU lock into its own STRATA_ENV/venv, offline
        # (not byte-compiled: half the install time of the test).
        stack.write_text(
            "config:\n  strata:cluster:\n    provider: static\n    instance_type: cpu\n    node_count: 2\n"
            f"    scheduler: slurm\n    inventory: {inventory}\n    ray: {{state_dir: {RAY_STATE}}}\n"
            f"    environment: {{install: true, path: {STRATA_ENV}, wheelhouse: {build_wheelhouse()}, "
            "compile: false}\n"
        )
        up = strata("up", str(stack))
        try:
            assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
            yield nodes, inventory, stack
        finally:
            down = strata("down", str(stack))
            shutil.rmtree(SHARED, ignore_errors=True)
            assert down.returncode == 0, down.stderr[-3000:]


def test_a_second_up_changes_nothing(cluster: tuple[NetnsCluster, Path, Path]) -> None:
    _, _, stack = cluster
    again = strata("up", str(stack))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "hosts ready: n1 (changed 0), n2 (changed 0)" in again.stdout + again.stderr


def test_ray_runs_from_the_environment_installed_on_each_node(
    cluster: tuple[NetnsCluster, Path, Path],
) -> None:
    nodes, _, _ = cluster
    for name in ("n1", "n2"):
        ray = nodes.ssh(name, f"tr '\\0' ' ' < /proc/$(cat {RAY_STATE}/ray.pid)/cmdline")
        assert f"{STRATA_ENV}/venv/bin/ray start --block" in ray.stdout, ray.stdout + ray.stderr
        # Strata itself is the installed wheel, not this checkout.
        where = nodes.ssh(name, f"{STRATA_ENV}/venv/bin/python -c 'import strata; print(strata.__file__)'")
        assert where.stdout.startswith(f"{STRATA_ENV}/venv/lib/"), where.stdout + where.stderr


def test_both_nodes_are_idle_in_slurm_and_srun_spans_them(cluster: tuple[NetnsCluster, Path, Path]) -> None:
    nodes, _, _ = cluster
    sinfo = nodes.ssh("n1", ENV + "sinfo --noheader --format='%T %D'")
    assert sinfo.stdout.split() == ["idle", "2"], sinfo.stdout + sinfo.stderr
    srun = nodes.ssh("n1", ENV + "srun -N2 hostname")
    assert sorted(srun.stdout.split()) == ["n1", "n2"], srun.stderr


def test_ray_runs_tasks_on_both_nodes(cluster: tuple[NetnsCluster, Path, Path]) -> None:
    nodes, _, _ = cluster
    program = (
        "import ray, socket, sys; from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On; "
        "ray.init(address='10.77.0.11:6379'); "
        "f = ray.remote(num_cpus=1)(lambda: (socket.gethostname(), sys.prefix)); "
        "ids = [n['NodeID'] for n in ray.nodes() if n['Alive']]; "
        "print(sorted(ray.get([f.options(scheduling_strategy=On(i, soft=False)).remote() for i in ids])))"
    )
    env = f"export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={RAY_STATE}/auth_token; "
    result = nodes.ssh("n1", f'{env}{STRATA_ENV}/venv/bin/python -c "{program}"')
    venv = f"{STRATA_ENV}/venv"
    assert result.stdout.strip().splitlines()[-1] == str([("n1", venv), ("n2", venv)]), (
        result.stdout + result.stderr
    )


def test_a_ray_cluster_starts_inside_a_two_node_allocation(cluster: tuple[NetnsCluster, Path, Path]) -> None:
    nodes, _, _ = cluster
    check = "import ray; ray.init(); print('ray nodes', sum(n['Alive'] for n in ray.nodes()))"
    result = nodes.ssh(
        "n1",
        ENV + f"cd {SHARED} && sbatch --wait -N2 --output={SHARED}/ray.out {ROOT}/ray-on-slurm.sbatch "
        f'{STRATA_ENV}/venv/bin/python -c "{check}"',
    )
    output = (SHARED / "ray.out").read_text()
    assert result.returncode == 0, result.stderr + output
    assert "ray nodes 2" in output


def test_health_checks_report_and_drain_failing_nodes(cluster: tuple[NetnsCluster, Path, Path]) -> None:
    nodes, _, stack = cluster
    ok = strata("health", str(stack))
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "n1: all_reduce" in ok.stdout and "n2: all_reduce" in ok.stdout
    report = Path(".strata/netns/health.json")
    results = json.loads(report.read_text())
    assert set(results) == {"n1", "n2"}
    assert all(r["problems"] == [] and r["backend"] == "gloo" and r["bus_gb_s"] > 0 for r in results.values())

    bad = strata("health", str(stack), "--floor", "1000000")
    assert bad.returncode == 2
    assert "task 'Fail the nodes that did not pass'" in bad.stderr and "below the floor" in bad.stderr
    assert all(r["problems"] for r in json.loads(report.read_text()).values())
    drained = nodes.ssh("n1", ENV + "sinfo --noheader --format='%T %D'").stdout.split()
    assert drained == ["drained", "2"]
    nodes.ssh("n1", ENV + "scontrol update nodename=n1,n2 state=resume")


def _pipeline_job(folder: Path, corpus: Path, out: Path) -> Path:
    """The demo pipeline on `corpus`, writing to `out` in shards of 20,000 tokens."""
    job = folder / f"{out.name}.yaml"
    demo = Path("jobs/demo/pipeline.yaml").read_text()
    for old, new in (
        ("runs/demo/pipeline", str(out)),
        ("data/demo/corpus.jsonl", str(corpus)),
        ("tokens_per_shard: 250000", "tokens_per_shard: 20000"),
    ):
        assert old in demo, old
        demo = demo.replace(old, new)
    job.write_text(demo)
    return job


def test_the_pipeline_on_two_nodes_writes_the_shards_of_one_node(
    cluster: tuple[NetnsCluster, Path, Path], tmp_path: Path
) -> None:
    # Inputs and output on a path every node sees; the reference is the same job on this
    # machine's local Ray (one node, the same 2 worker CPUs).
    _, _, stack = cluster
    folder = SHARED / "pipeline"
    folder.mkdir(parents=True)
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(Path("data/demo/corpus.jsonl").read_text().splitlines(keepends=True)[:300]))
    submitted = strata("submit", str(_pipeline_job(folder, corpus, folder / "out")), "--stack", str(stack))
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    local = strata("run", str(_pipeline_job(tmp_path, corpus, tmp_path / "out")))
    assert local.returncode == 0, local.stderr[-3000:]

    two, one = (json.loads((d / "out" / "shards" / "manifest.json").read_text()) for d in (folder, tmp_path))
    assert len(two["shards"]) >= 2
    assert [(s["sha256"], s["idx_sha256"]) for s in two["shards"]] == [
        (s["sha256"], s["idx_sha256"]) for s in one["shards"]
    ]
    # The driver ran in the nodes' environment, and its run manifest names that environment's lock.
    recorded = json.loads((folder / "out" / "run-manifest.json").read_text())["lock"]
    assert recorded == {"file": f"{STRATA_ENV}/locks/cpu.txt", "sha256": sha256_file(Path("locks/cpu.txt"))}
    assert (folder / "out" / "tokenizer.json").read_bytes() == (
        tmp_path / "out" / "tokenizer.json"
    ).read_bytes()
