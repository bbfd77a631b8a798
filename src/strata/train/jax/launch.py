"""Run a `backend: jax` train job on the Ray cluster: one JAX process per host, joined into one
`jax.distributed` group, each training on its host's devices of the job's mesh.

`workers.num_workers` is the number of hosts (processes). On TPU hosts each process asks
Ray for the host's chips (Ray's `TPU` resource: the catalog's chips per host); on CPU
workers each process simulates `workers.cpus_per_worker` devices with XLA's host platform
(what the tests run) and JAX's CPU collectives go over gloo. Process 0's node is the
coordinator; it listens on a free port of that node's cluster address only (not on every
interface; the cluster's network rules confine it like Ray's own ports). Process 0 writes metrics.jsonl and the final weights; every
process writes its part of each Orbax checkpoint.

This module imports no JAX: the job's driver only schedules the processes.
"""

from __future__ import annotations

import functools
import logging
import socket
from pathlib import Path
from typing import Any

import ray

from strata.errors import JobError
from strata.spec.catalog import load_catalog
from strata.spec.train import TrainJob
from strata.train.metrics import read_metrics
from strata.train.run_files import WEIGHTS_NPZ
from strata.train.samples import training_samples

logger = logging.getLogger(__name__)


def prepare_jax_training(job: TrainJob, *, instance_type: str | None) -> functools.partial[dict[str, Any]]:
    """Check the shards and that the cluster can place one process per host, writing nothing;
    return the function that trains and returns a summary of metrics.jsonl. Raises JobError."""
    if job.workers.use_gpu:
        raise JobError(
            f"train job {job.name!r}: key `workers.use_gpu`: backend jax runs on TPU hosts or CPUs; "
            "train on GPUs with backend deepspeed"
        )
    samples = training_samples(job)
    logger.info("%d training samples of %d tokens", samples.num_samples, job.model.seq_len)
    options, peak = host_options(job, instance_type)
    check_cluster_places(job.workers.num_workers, options)
    out = Path(job.output.dir).resolve()
    return functools.partial(_train_on_hosts, job.with_values({"output.dir": str(out)}), options, peak)


def host_options(job: TrainJob, instance_type: str | None) -> tuple[dict[str, Any], float | None]:
    """Ray options of one host's process and the peak FLOP/s of one of its devices (None on CPUs)."""
    catalog = load_catalog()
    instance = catalog.get(instance_type) if instance_type and instance_type in catalog else None
    cpus = job.workers.cpus_per_worker
    if instance is not None and instance.accelerator.startswith("TPU"):
        chips = instance.accelerators_per_node // instance.hosts_per_node
        return {"num_cpus": cpus, "resources": {"TPU": chips}}, instance.peak_bf16_flops_per_accelerator
    devices = f"--xla_force_host_platform_device_count={cpus}"
    env = {"XLA_FLAGS": devices, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": str(cpus)}
    return {"num_cpus": cpus, "runtime_env": {"env_vars": env}}, None


def check_cluster_places(hosts: int, options: dict[str, Any]) -> None:
    """Refuse host processes the connected Ray cluster cannot place (Ray would wait forever)."""
    need = {"CPU": hosts * options["num_cpus"]} | {
        k: hosts * v for k, v in options.get("resources", {}).items()
    }
    have = ray.cluster_resources()
    short = {k: v for k, v in need.items() if have.get(k, 0) < v}
    if short:
        wanted = ", ".join(f"{v:g} {k}" for k, v in need.items())
        cluster = ", ".join(f"{have.get(k, 0):g} {k}" for k in need)
        raise JobError(
            f"workers: {hosts} JAX processes need {wanted}; the Ray cluster has {cluster}. Lower "
            "workers.num_workers or cpus_per_worker, or provision the hosts (a TPU slice's hosts each "
            "give Ray their chips as `TPU`)"
        )


@ray.remote(max_restarts=0)
class JaxHost:
    """One host's JAX process."""

    def coordinator_address(self) -> str:
        """This node's address and a port free on it, for jax.distributed's coordinator."""
        ip = ray.util.get_node_ip_address()
        with socket.socket() as probe:
            probe.bind((ip, 0))
            return f"{ip}:{probe.getsockname()[1]}"

    def train(self, job: TrainJob, coordinator: str, process: int, processes: int, peak: float | None) -> int:
        """Join the group and train; returns the number of steps run."""
        import os

        import jax

        if processes > 1:
            if os.environ.get("JAX_PLATFORMS") == "cpu":
                jax.config.update("jax_cpu_collectives_implementation", "gloo")
            # The coordinator listens on the node's cluster address only, not on every interface.
            jax.distributed.initialize(
                coordinator,
                processes,
                process,
                coordinator_bind_address=coordinator if process == 0 else None,
            )
        from strata.train.jax.trainer import train

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        # The driver verified the shards' checksums; each host does not hash them again.
        return len(train(job, peak_flops_per_device=peak, verify_shards=False))


def _train_on_hosts(job: TrainJob, options: dict[str, Any], peak: float | None) -> dict[str, Any]:
    hosts = job.workers.num_workers
    actors = [JaxHost.options(**options).remote() for _ in range(hosts)]  # type: ignore[attr-defined]
    try:
        coordinator = ray.get(actors[0].coordinator_address.remote())
        logger.info("%d JAX processes, coordinator %s", hosts, coordinator)
        ray.get([a.train.remote(job, coordinator, i, hosts, peak) for i, a in enumerate(actors)])
    except ray.exceptions.RayError as exc:
        raise JobError(f"training job {job.name!r} failed: {exc}") from exc
    finally:
        for actor in actors:
            ray.kill(actor)
    out = Path(job.output.dir)
    rows = read_metrics(out / "metrics.jsonl")
    return {
        "job": job.name,
        "backend": "jax",
        "processes": hosts,
        "steps": len(rows),
        "first_loss": rows[0]["loss"],
        "final_loss": rows[-1]["loss"],
        "weights": str(out / WEIGHTS_NPZ),
    }
