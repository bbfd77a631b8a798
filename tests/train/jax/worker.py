"""Run one side of a JAX test in its own process: `python worker.py MODE ARGS.json`.

XLA reads XLA_FLAGS (the simulated device count) once, when JAX starts, so every JAX run
is a fresh process. Modes:
- jax: train ARGS["job"] on the first ARGS["devices"] devices (optionally from the weights
  in ARGS["init"], stopping after ARGS["stop_after"], with ARGS["peak"] FLOP/s per device
  for MFU); write {"losses": [...]} to ARGS["out"].
- shards: place the job's initial state on its mesh, run one step and write, per parameter,
  the share of its elements on each device.
- logits: the JAX model's fp32 logits for ARGS["tokens"] from the finished run's model.npz
  and model-config.json in ARGS["run"].
- deepspeed: save the seeded torch Llama's state dict to ARGS["init"] (npz), then train the
  job with DeepSpeed in this one process (strata.train.single); write its losses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from strata.spec.load import load_train_job


def run_jax(args: dict[str, Any]) -> dict[str, Any]:
    import jax

    from strata.train.jax.trainer import train

    init = dict(np.load(args["init"])) if args.get("init") else None
    devices = jax.devices()[: args["devices"]]
    job = load_train_job(args["job"])
    losses = train(
        job,
        devices=devices,
        initial_params=init,
        stop_after=args.get("stop_after"),
        peak_flops_per_device=args.get("peak"),
    )
    return {"losses": losses}


def run_shards(args: dict[str, Any]) -> dict[str, Any]:
    import jax

    from strata.spec.models import build_model_config
    from strata.train.data import ShardSamples
    from strata.train.jax import trainer
    from strata.train.jax.model import param_shapes
    from strata.train.jax.optim import build_optimizer
    from strata.train.jax.sharding import build_mesh, param_shardings

    job = load_train_job(args["job"])
    samples = ShardSamples(Path(job.data.shards), job.model.seq_len, job.seed)
    cfg = build_model_config(job.model, samples.vocab_size)
    mesh = build_mesh(job, jax.devices())
    tx = build_optimizer(job.optimizer, job.steps)
    p_shardings = param_shardings(param_shapes(cfg), mesh)
    params, opt_state, o_shardings = trainer.initial_state(cfg, tx, p_shardings, mesh, initial=None, seed=0)
    step = trainer.build_step(cfg, tx, mesh, p_shardings, o_shardings)
    params, opt_state, _ = step(params, opt_state, *trainer.step_batch(job, samples, 0, mesh))
    moments = opt_state[1][0].mu  # (clip, adamw(scale_by_adam, ...)): Adam's first moment
    return {
        "params": {n: [s.data.size / a.size for s in a.addressable_shards] for n, a in params.items()},
        "moments": {n: [s.data.size / a.size for s in a.addressable_shards] for n, a in moments.items()},
    }


def run_logits(args: dict[str, Any]) -> dict[str, Any]:
    import jax.numpy as jnp

    from strata.spec.models import LlamaConfig, config_from_description
    from strata.train.jax.model import logits

    run = Path(args["run"])
    cfg = config_from_description(json.loads((run / "model-config.json").read_text()))
    assert isinstance(cfg, LlamaConfig)
    with np.load(run / "model.npz") as arrays:
        params = {name: jnp.asarray(arrays[name]) for name in arrays.files}
    return {"logits": np.asarray(logits(cfg, params, jnp.asarray(args["tokens"]))).tolist()}


def run_deepspeed(args: dict[str, Any]) -> dict[str, Any]:
    import torch

    from strata.spec.models import build_model_config
    from strata.train.data import ShardSamples
    from strata.train.models import build_model
    from strata.train.single import train_single_process

    job = load_train_job(args["job"])
    samples = ShardSamples(Path(job.data.shards), job.model.seq_len, job.seed)
    torch.manual_seed(job.seed)  # as strata.train.step.build_engine seeds the model it trains
    model = build_model(build_model_config(job.model, samples.vocab_size))
    np.savez(args["init"], **{n: t.detach().numpy() for n, t in model.state_dict().items()})
    return {"losses": train_single_process(job)["losses"]}


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    arguments = json.loads(Path(path).read_text())
    result = {"jax": run_jax, "shards": run_shards, "logits": run_logits, "deepspeed": run_deepspeed}[mode](
        arguments
    )
    Path(arguments["out"]).write_text(json.dumps(result))
