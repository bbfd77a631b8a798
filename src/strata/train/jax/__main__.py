"""`python -m strata.train.jax JOB.yaml [--devices N] [--stop-after STEP] [--instance TYPE]`:
train one JAX job in this process on its devices (simulate N CPU devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N, set before the start); `--instance`
names the catalog's instance type whose accelerator peak the `mfu` metric divides by."""

from __future__ import annotations

import argparse
import logging

import jax

from strata.errors import JobError
from strata.spec.catalog import load_catalog
from strata.spec.load import load_train_job
from strata.train.jax.trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m strata.train.jax", description=__doc__)
    parser.add_argument("job", help="train job YAML (backend: jax)")
    parser.add_argument("--devices", type=int, help="use the first N devices (default: all)")
    parser.add_argument("--stop-after", type=int, help="end after this step, without a final checkpoint")
    parser.add_argument("--instance", help="catalog instance type whose accelerator peak MFU is against")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    devices = jax.devices()[: args.devices] if args.devices else None
    train(
        load_train_job(args.job),
        devices=devices,
        stop_after=args.stop_after,
        peak_flops_per_device=peak_flops(args.instance) if args.instance else None,
    )


def peak_flops(instance: str) -> float:
    """Dense bf16 FLOP/s of one accelerator of catalog instance type `instance`; JobError
    for a type the catalog lacks or one without accelerators."""
    catalog = load_catalog()
    peak = catalog.get(instance).peak_bf16_flops_per_accelerator if instance in catalog else None
    if peak is None:
        raise JobError(f"--instance {instance}: the catalog has no accelerator peak for it")
    return peak


if __name__ == "__main__":
    main()
