"""`python -m strata.train.jax JOB.yaml [--devices N] [--stop-after STEP]`: train one JAX job
in this process on its devices (simulate N CPU devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N, set before the start)."""

from __future__ import annotations

import argparse
import logging

import jax

from strata.spec.load import load_train_job
from strata.train.jax.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m strata.train.jax", description=__doc__)
    parser.add_argument("job", help="train job YAML (backend: jax)")
    parser.add_argument("--devices", type=int, help="use the first N devices (default: all)")
    parser.add_argument("--stop-after", type=int, help="end after this step, without a final checkpoint")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    devices = jax.devices()[: args.devices] if args.devices else None
    train(load_train_job(args.job), devices=devices, stop_after=args.stop_after)


if __name__ == "__main__":
    main()
