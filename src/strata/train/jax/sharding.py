"""The device mesh of a JAX train job and where each parameter and batch lives on it.

Axes ("data", "fsdp", "tensor"): `parallel.tensor` and `parallel.fsdp` size the last two,
data parallelism takes the remaining devices. The batch is split over data × fsdp;
parameters (and with them the optimizer state) over fsdp and tensor, Megatron-style
(Shoeybi et al. 2019): q/k/v, gate and up projections by output rows on "tensor" (column
parallel), o and down projections by input columns (row parallel), the embedding and
output projection by vocabulary; the other dimension of each matrix on "fsdp" (ZeRO-3's
partitioning, gathered by XLA for each use). Norm weights are small and replicated.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from strata.errors import JobError
from strata.spec.train import TrainJob

logger = logging.getLogger(__name__)

AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")
_COLUMN_PARALLEL = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "embed_tokens", "lm_head")
_ROW_PARALLEL = ("o_proj", "down_proj")


def build_mesh(job: TrainJob, devices: list[Any] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: every device JAX sees).

    Raises JobError when fsdp × tensor does not divide the device count.
    """
    devices = list(jax.devices()) if devices is None else devices
    fsdp, tensor = job.parallel.fsdp, job.parallel.tensor
    if len(devices) % (fsdp * tensor):
        raise JobError(
            f"parallel.fsdp ({fsdp}) × parallel.tensor ({tensor}) = {fsdp * tensor} does not divide the "
            f"{len(devices)} devices; choose factors of {len(devices)}"
        )
    shape = (len(devices) // (fsdp * tensor), fsdp, tensor)
    return Mesh(np.array(devices).reshape(shape), AXES)


def param_spec(name: str, shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
    """Where parameter `name` lives; an axis whose size does not divide its dimension is
    dropped for that dimension (e.g. an odd vocabulary stays whole across "tensor")."""
    if len(shape) == 1:
        return PartitionSpec()
    kind = name.split(".")[-2]
    if kind not in _COLUMN_PARALLEL + _ROW_PARALLEL:
        raise ValueError(f"{name}: no sharding rule for this parameter")
    wanted = ("tensor", "fsdp") if kind in _COLUMN_PARALLEL else ("fsdp", "tensor")
    fitted = tuple(
        axis if dim % mesh.shape[axis] == 0 else None for axis, dim in zip(wanted, shape, strict=True)
    )
    if fitted != wanted:
        logger.info("%s %s: not split on %s (sizes do not divide)", name, shape, set(wanted) - set(fitted))
    return PartitionSpec(*fitted)


def param_shardings(shapes: dict[str, tuple[int, ...]], mesh: Mesh) -> dict[str, NamedSharding]:
    return {name: NamedSharding(mesh, param_spec(name, shape, mesh)) for name, shape in shapes.items()}


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """(micro-steps, samples, tokens) blocks: samples split over data × fsdp."""
    return NamedSharding(mesh, PartitionSpec(None, BATCH_AXES, None))


def check_batch(job: TrainJob, mesh: Mesh) -> None:
    """The samples of one micro-step must divide over the data × fsdp devices."""
    per_micro = job.global_batch // job.batch.grad_accum_steps
    ways = mesh.shape["data"] * mesh.shape["fsdp"]
    if per_micro % ways:
        raise JobError(
            f"batch: {per_micro} samples per micro-step (micro_batch_size {job.batch.micro_batch_size} × "
            f"workers.num_workers {job.workers.num_workers}) do not divide over data ({mesh.shape['data']}) × "
            f"fsdp ({mesh.shape['fsdp']}) = {ways} devices; use a multiple of {ways}"
        )
