"""Training samples from the pipeline's shards, in a seeded order that needs no loader state.

All shards are memory-mapped and read as one token stream; sample i is the
`seq_len + 1` tokens starting at i·seq_len. Global sample number g (counting
micro-batches of all ranks in step order) maps to sample perm_e[g mod n] where
e = g div n and perm_e is a permutation seeded by (seed, e). Any step on any rank
can therefore be produced directly, which makes resumption exact.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from strata.errors import JobError
from strata.pipeline.shards import MANIFEST, load_manifest, read_index

if TYPE_CHECKING:
    import torch


class ShardSamples:
    """Fixed-length samples over every shard listed in a manifest."""

    def __init__(self, shard_dir: Path, seq_len: int, seed: int, verify: bool = True) -> None:
        if not (shard_dir / MANIFEST).is_file():
            raise JobError(f"{shard_dir}: no {MANIFEST}; run the pipeline job that writes these shards first")
        self.manifest = load_manifest(shard_dir)
        arrays = []
        for shard in self.manifest["shards"]:
            path = shard_dir / shard["bin"]
            if not path.is_file():
                raise JobError(f"{path}: shard listed in the manifest is missing")
            if verify and hashlib.sha256(path.read_bytes()).hexdigest() != shard["sha256"]:
                raise JobError(f"{path}: checksum does not match the manifest; the shard is corrupt")
            if verify:
                _check_index(shard_dir / shard["idx"], shard["tokens"])
            arrays.append(np.memmap(path, dtype="<u2", mode="r"))
        self.tokens: np.ndarray[Any, Any] = np.concatenate(arrays) if arrays else np.zeros(0, "<u2")
        self.seq_len = seq_len
        self.seed = seed
        self.num_samples = (len(self.tokens) - 1) // seq_len
        if self.num_samples < 1:
            raise JobError(f"{shard_dir}: {len(self.tokens)} tokens is less than one sample of {seq_len + 1}")
        self._perms: dict[int, np.ndarray[Any, Any]] = {}

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    def _sample_index(self, global_index: int) -> int:
        epoch, offset = divmod(global_index, self.num_samples)
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)}
        return int(self._perms[epoch][offset])

    def rows(self, first_global_index: int, size: int) -> np.ndarray[Any, Any]:
        """`size` consecutive global samples as int64 rows of `seq_len + 1` tokens (no torch:
        the JAX trainer reads the same samples through this)."""
        rows = []
        for g in range(first_global_index, first_global_index + size):
            start = self._sample_index(g) * self.seq_len
            rows.append(np.asarray(self.tokens[start : start + self.seq_len + 1], dtype=np.int64))
        return np.stack(rows)

    def batch(self, first_global_index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for `size` consecutive global sample numbers."""
        import torch

        block = torch.from_numpy(self.rows(first_global_index, size))
        return block[:, :-1], block[:, 1:]


def _check_index(path: Path, tokens: int) -> None:
    """The Megatron index must exist and cover exactly the shard's tokens."""
    if not path.is_file():
        raise JobError(f"{path}: index listed in the manifest is missing")
    try:
        lengths, _ = read_index(path)
    except ValueError as error:
        raise JobError(f"{error}; the shard index is corrupt") from error
    if int(lengths.sum()) != tokens:
        raise JobError(f"{path}: index covers {int(lengths.sum())} tokens, the manifest says {tokens}")


def global_index(
    *, step: int, micro: int, rank: int, accum_steps: int, world_size: int, micro_batch: int
) -> int:
    """First global sample number of (step, micro-step, rank)."""
    return ((step * accum_steps + micro) * world_size + rank) * micro_batch
