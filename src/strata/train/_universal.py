"""DeepSpeed universal checkpoints: ZeRO 1-3 state made loadable on any number of ranks
(a helper of strata.train.checkpoints, which alone calls it).

A ZeRO checkpoint holds each rank's flat slice of the fp32 weights and Adam moments, so
it loads only on the rank count that wrote it. DeepSpeed's `ds_to_universal` regathers
the slices into one file per parameter and state; an engine configured with
`checkpoint.load_universal` cuts its own slices from those on load.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
UNIVERSAL = "universal"  # the converted state, inside the Ray Train checkpoint directory


def write_universal(checkpoint: Path, tag: str) -> Path:
    """Convert `checkpoint/tag` into `checkpoint/universal/tag` once; return `checkpoint/universal`.

    Written under a temporary name and renamed, so a conversion that dies leaves nothing
    half-written that a later run could load.
    """
    target = checkpoint / UNIVERSAL
    if target.is_dir():
        return target
    from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

    partial = checkpoint / f"{UNIVERSAL}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    workers = max(1, min(4, os.cpu_count() or 1))
    logger.info("converting %s to a universal checkpoint (ZeRO state of another rank count)", checkpoint)
    ds_to_universal(
        argparse.Namespace(
            input_folder=str(checkpoint / tag),
            output_folder=str(partial / tag),
            num_extract_workers=workers,
            num_merge_workers=max(1, workers // 2),
            keep_temp_folder=False,
            strict=True,
            inject_missing_state=False,  # every Strata checkpoint carries universal_client_state()
        )
    )
    partial.rename(target)
    return target


def universal_client_state() -> dict[str, Any]:
    """What a checkpoint's client state must hold for `ds_to_universal` to accept it."""
    from deepspeed.checkpoint import constants

    return {
        constants.UNIVERSAL_CHECKPOINT_INFO: {
            constants.UNIVERSAL_CHECKPOINT_VERSION_KEY: constants.UNIVERSAL_CHECKPOINT_VERSION_VALUE
        }
    }
