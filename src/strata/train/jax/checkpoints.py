"""Orbax checkpoints of a JAX train job: parameters, optimizer state and the model's shape.

Each checkpoint is `<output.dir>/checkpoints/<step>/` (Orbax's CheckpointManager, the
newest `checkpoint.keep` kept). Arrays are restored straight into the shardings of the
mesh the resumed run builds, so a job saved on one mesh shape resumes on another.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from strata.errors import JobError
from strata.train.llama import LlamaConfig

logger = logging.getLogger(__name__)


class Checkpoints:
    """Save and restore the training state (a pytree) of one job's output directory."""

    def __init__(self, directory: Path, cfg: LlamaConfig, keep: int) -> None:
        self.directory = directory.resolve()
        self.model = dataclasses.asdict(cfg)
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        )

    def latest_step(self) -> int | None:
        step = self._manager.latest_step()
        return None if step is None else int(step)

    def save(self, step: int, state: Any) -> None:
        """Write the state after optimizer step `step` (asynchronously; `close` waits)."""
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), model=ocp.args.JsonSave(self.model)),
        )
        logger.info("checkpoint of step %d: %s", step, self.directory / str(step))

    def restore(self, step: int, abstract_state: Any) -> Any:
        """The state saved at `step`, placed as `abstract_state`'s ShapeDtypeStructs say.

        Raises JobError when the checkpoint's model shape differs from this job's.
        """
        saved = self._manager.restore(step, args=ocp.args.Composite(model=ocp.args.JsonRestore()))["model"]
        differing = {k: (saved.get(k), v) for k, v in self.model.items() if saved.get(k) != v}
        if differing:
            changes = ", ".join(
                f"{k}: {old} in the checkpoint, {new} now" for k, (old, new) in differing.items()
            )
            raise JobError(
                f"{self.directory / str(step)}: checkpoint of another model shape ({changes}); restore the "
                "job's model section or give it a new output.dir"
            )
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
        )
        logger.info("resumed from the checkpoint of step %d: %s", step, self.directory / str(step))
        return restored["state"]

    def close(self) -> None:
        """Wait for pending saves and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def abstract(tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs of `tree` (arrays or ShapeDtypeStructs) placed as `shardings` says."""
    return jax.tree.map(
        lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
        tree,
        shardings,
    )
