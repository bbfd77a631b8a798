"""Orbax checkpoints of a JAX train job: parameters, optimizer state and what must not change
on resume (model shape, seed, global batch: the sample order and the state's shapes).

Each checkpoint is `<output.dir>/checkpoints/<step>/` (Orbax's CheckpointManager, the
newest `checkpoint.keep` kept). Arrays are restored straight into the shardings of the
mesh the resumed run builds, so a job saved on one mesh shape resumes on another.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from strata.errors import JobError

logger = logging.getLogger(__name__)


class Checkpoints:
    """Save and restore the training state (a pytree) of one job's output directory."""

    def __init__(self, directory: Path, record: dict[str, Any], keep: int) -> None:
        """`record`: flat JSON values a resumed run must share (saved with every checkpoint)."""
        self.directory = directory.resolve()
        self.record = record
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
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(self.record)
            ),
        )
        logger.info("checkpoint of step %d: %s", step, self.directory / str(step))

    def restore(self, step: int, abstract_state: Any) -> Any:
        """The state saved at `step`, placed as `abstract_state`'s ShapeDtypeStructs say.

        Raises JobError when the checkpoint's record differs from this job's.
        """
        saved = self._manager.restore(step, args=ocp.args.Composite(record=ocp.args.JsonRestore()))["record"]
        differing = {k: (saved.get(k), v) for k, v in self.record.items() if saved.get(k) != v}
        if differing:
            changes = ", ".join(
                f"{k}: {old} in the checkpoint, {new} now" for k, (old, new) in differing.items()
            )
            raise JobError(
                f"{self.directory / str(step)}: checkpoint of another job ({changes}); restore those keys "
                "or give the job a new output.dir"
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
