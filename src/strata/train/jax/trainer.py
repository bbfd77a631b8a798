"""The JAX training loop: the job's Llama, shards, sample order, optimizer and schedule on a
device mesh, with Orbax checkpoints and the torch path's metrics.jsonl.

Step k (0-based) trains on global samples k·G … k·G + G − 1 with G = `job.global_batch`
(micro_batch_size × grad_accum_steps × workers.num_workers), the samples the DeepSpeed
ranks of the same job read together in that step (strata.train.data), split into
grad_accum_steps micro-steps whose gradients are averaged. The loss of a step is the mean
over its micro-steps, as the torch loop reports it. Weights and optimizer state are fp32;
on TPUs and GPUs the forward and backward pass run in bf16 (`precision` bf16 or autocast
alike), on CPUs in fp32.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from strata.files import atomic_path, atomic_write_text
from strata.spec.models import LlamaConfig, build_model_config, describe, mfu
from strata.spec.train import TrainJob
from strata.train.blend import BlendedSamples
from strata.train.data import Samples
from strata.train.jax.checkpoints import Checkpoints, abstract
from strata.train.jax.model import Params, check_params, init_params, lm_loss, logits, param_shapes
from strata.train.jax.optim import build_optimizer, lr_schedule
from strata.train.jax.sharding import batch_sharding, build_mesh, check_batch, param_shardings
from strata.train.metrics import MetricsLogger
from strata.train.run_files import MODEL_CONFIG, WEIGHTS_NPZ
from strata.train.samples import training_samples

logger = logging.getLogger(__name__)

StepFn = Callable[[Params, Any, jax.Array, jax.Array], tuple[Params, Any, jax.Array]]


def train(
    job: TrainJob,
    *,
    devices: list[Any] | None = None,
    initial_params: dict[str, np.ndarray[Any, Any]] | None = None,
    stop_after: int | None = None,
    peak_flops_per_device: float | None = None,
    verify_shards: bool = True,
) -> list[float]:
    """Train `job` (resuming from its newest checkpoint) and return the losses of the steps run.

    `devices`: the mesh's devices (default all); `initial_params`: weights by torch name
    instead of the seeded initialisation; `stop_after`: end after this step without the
    final checkpoint, as a killed run would; `peak_flops_per_device`: one accelerator's dense
    bf16 FLOP/s (the catalog's), for the `mfu` of each step in metrics.jsonl; `verify_shards`:
    hash every shard against its manifest first (off where a launcher already did). Raises JobError for shards, mesh or batch
    that do not fit, and for a checkpoint of another model shape.
    """
    samples = training_samples(job, verify=verify_shards)
    cfg = build_model_config(job.model, samples.vocab_size)
    if not isinstance(cfg, LlamaConfig):  # the spec refuses family gpt on jax
        raise TypeError("backend jax trains the llama family")
    mesh = build_mesh(job, devices)
    check_batch(job, mesh)
    logger.info("mesh %s over %d %s devices", dict(mesh.shape), mesh.size, jax.default_backend())
    tx = build_optimizer(job.optimizer, job.steps)
    p_shardings = param_shardings(param_shapes(cfg), mesh)
    out = Path(job.output.dir)
    record = {f"model.{k}": v for k, v in dataclasses.asdict(cfg).items()}
    record |= {"seed": job.seed, "global_batch": job.global_batch, "sample_order": job.data.sample_order()}
    checkpoints = Checkpoints(out / "checkpoints", record, keep=job.checkpoint.keep)
    start = checkpoints.latest_step() or 0
    params, opt_state, o_shardings = initial_state(
        cfg, tx, p_shardings, mesh, initial=initial_params, seed=job.seed
    )
    if start:
        state = checkpoints.restore(
            start, abstract({"params": params, "opt": opt_state}, {"params": p_shardings, "opt": o_shardings})
        )
        params, opt_state = state["params"], state["opt"]
    step_fn = build_step(cfg, tx, mesh, p_shardings, o_shardings, recompute=job.activation_checkpointing)
    lead = jax.process_index() == 0  # of the job's processes (one per host), the one that writes
    metrics = MetricsLogger(out / "metrics.jsonl", keep_steps=start) if lead else None
    schedule = lr_schedule(job.optimizer, job.steps)
    end = job.steps if stop_after is None else min(job.steps, stop_after)
    every, losses = job.checkpoint.every_steps, []
    try:
        for step in range(start, end):
            started = time.perf_counter()
            x, y = step_batch(job, samples, step, mesh)
            params, opt_state, loss_array = step_fn(params, opt_state, x, y)
            loss = float(loss_array.addressable_data(0))  # replicated: every process holds it
            seconds = time.perf_counter() - started
            losses.append(loss)
            tokens_per_second = job.global_batch * job.model.seq_len / seconds
            peak = peak_flops_per_device * mesh.size if peak_flops_per_device else None
            if metrics is not None:
                metrics.log(
                    {
                        "step": step + 1,
                        "loss": loss,
                        "lr": float(schedule(step)),
                        "step_seconds": seconds,
                        "tokens_per_second": tokens_per_second,
                        "mfu": mfu(cfg.flops_per_token(), tokens_per_second, peak) if peak else None,
                        "devices": mesh.size,
                        **(
                            {"tokens_by_source": samples.drawn_tokens((step + 1) * job.global_batch)}
                            if isinstance(samples, BlendedSamples)
                            else {}
                        ),
                    }
                )
            if (every and (step + 1) % every == 0) or step + 1 == job.steps:
                checkpoints.save(step + 1, {"params": params, "opt": opt_state})
            if step + 1 == job.steps:
                save_weights(out, cfg, params, write=lead)
    finally:
        if metrics is not None:
            metrics.close()
        checkpoints.close()
    return losses


def save_weights(out: Path, cfg: LlamaConfig, params: Params, *, write: bool) -> None:
    """After the last step: `model.npz` (every parameter whole, fp32, under the torch model's
    names) and `model-config.json`, what `strata export` reads, each whole or not at all.
    Every process takes part in gathering the parameters; the one told to `write` writes."""
    host: dict[str, Any] = {name: np.asarray(gather(value)) for name, value in params.items()}
    if not write:
        return
    with atomic_path(out / WEIGHTS_NPZ) as tmp, tmp.open("wb") as file:
        np.savez(file, **host)
    atomic_write_text(out / MODEL_CONFIG, json.dumps(describe(cfg)))


def initial_state(
    cfg: LlamaConfig,
    tx: optax.GradientTransformation,
    p_shardings: dict[str, NamedSharding],
    mesh: Mesh,
    *,
    initial: dict[str, np.ndarray[Any, Any]] | None,
    seed: int,
) -> tuple[Params, Any, Any]:
    """Parameters placed on the mesh, the optimizer state sharded as its parameters, and its shardings."""
    host = init_params(cfg, seed) if initial is None else initial
    check_params(cfg, host)
    params = {name: place(np.asarray(host[name], np.float32), p_shardings[name]) for name in p_shardings}
    o_shardings = _optimizer_shardings(jax.eval_shape(tx.init, params), p_shardings, mesh)
    opt_state = jax.jit(tx.init, out_shardings=o_shardings)(params)
    return params, opt_state, o_shardings


def _optimizer_shardings(state_shape: Any, p_shardings: dict[str, NamedSharding], mesh: Mesh) -> Any:
    """Adam's moments sit with their parameter (found by its name in the state's tree path);
    counters are replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(path: tuple[Any, ...], _: Any) -> NamedSharding:
        key = str(getattr(path[-1], "key", "")) if path else ""
        return p_shardings.get(key, replicated)

    return jax.tree_util.tree_map_with_path(place, state_shape)


def build_step(
    cfg: LlamaConfig,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    p_shardings: dict[str, NamedSharding],
    o_shardings: Any,
    *,
    recompute: bool = False,
) -> StepFn:
    """One optimizer step, compiled for the mesh: (params, opt_state, x, y) → (params,
    opt_state, mean loss); x and y are (micro-steps, samples, seq_len) token ids."""
    compute_dtype = jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16

    def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
        return lm_loss(logits(cfg, params, x, compute_dtype=compute_dtype, recompute=recompute), y)

    def step(params: Params, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[Params, Any, jax.Array]:
        def micro(grads: Params, xy: tuple[jax.Array, jax.Array]) -> tuple[Params, jax.Array]:
            loss, g = jax.value_and_grad(loss_fn)(params, *xy)
            return jax.tree.map(jnp.add, grads, g), loss

        zeros = jax.tree.map(jnp.zeros_like, params)
        grads, losses = jax.lax.scan(micro, zeros, (x, y))
        grads = jax.tree.map(lambda g: g / x.shape[0], grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, jnp.mean(losses)

    batch = batch_sharding(mesh)
    replicated = NamedSharding(mesh, PartitionSpec())
    compiled: StepFn = jax.jit(
        step,
        in_shardings=(p_shardings, o_shardings, batch, batch),
        out_shardings=(p_shardings, o_shardings, replicated),
        donate_argnums=(0, 1),
    )
    return compiled


def step_batch(job: TrainJob, samples: Samples, step: int, mesh: Mesh) -> tuple[jax.Array, jax.Array]:
    """Inputs and targets of optimizer step `step`, (grad_accum_steps, samples per micro-step,
    seq_len) int32, split over the mesh's batch axes."""
    size, accum = job.global_batch, job.batch.grad_accum_steps
    rows = samples.rows(step * size, size).astype(np.int32).reshape(accum, size // accum, -1)
    sharding = batch_sharding(mesh)
    return place(rows[..., :-1], sharding), place(rows[..., 1:], sharding)


def place(array: np.ndarray[Any, Any], sharding: NamedSharding) -> jax.Array:
    """A global array of `array`'s value split as `sharding` says; each process (every one
    holds the whole `array`) places the pieces its own devices hold."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def gather(array: jax.Array) -> np.ndarray[Any, Any]:
    """The whole value of a global array on every process (its pieces may sit on other hosts)."""
    if jax.process_count() == 1:
        return np.asarray(jax.device_get(array))
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))
