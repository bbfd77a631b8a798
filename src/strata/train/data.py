"""Training samples from the pipeline's shards, in a seeded order that needs no loader state.

All shards are memory-mapped and read as one token stream; sample i is the
`seq_len + 1` tokens starting at i·seq_len. Global sample number g (counting
micro-batches of all ranks in step order) maps to sample perm_e[g mod n] where
e = g div n and perm_e is a permutation seeded by (seed, e). Any step on any rank
can therefore be produced directly, which makes resumption exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from strata.errors import JobError
from strata.shards import check_token_ids, read_tokens


class ShardSamples:
    """Fixed-length samples over every shard listed in a manifest (checked by `strata.shards`).

    With `verify`, every token id must be below the manifest's `vocab_size`, the vocabulary the
    model is built with (`strata.spec.models.build_model_config`); JobError names the shard."""

    def __init__(self, shard_dir: Path, seq_len: int, seed: int, verify: bool = True) -> None:
        self.manifest, self.tokens = read_tokens(shard_dir, verify=verify)
        if verify:  # at job start (launcher, sweep); workers open the shards already checked
            check_token_ids(shard_dir, self.manifest, self.vocab_size)
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

    def batch(self, first_global_index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for `size` consecutive global sample numbers."""
        rows = []
        for g in range(first_global_index, first_global_index + size):
            start = self._sample_index(g) * self.seq_len
            rows.append(np.asarray(self.tokens[start : start + self.seq_len + 1], dtype=np.int64))
        block = torch.from_numpy(np.stack(rows))
        return block[:, :-1], block[:, 1:]


def global_index(
    *, step: int, micro: int, rank: int, accum_steps: int, world_size: int, micro_batch: int
) -> int:
    """First global sample number of (step, micro-step, rank)."""
    return ((step * accum_steps + micro) * world_size + rank) * micro_batch
