"""Training samples from the pipeline's shards, in a seeded order that needs no loader state.

All shards are memory-mapped and read as one token stream; sample i is the
`seq_len + 1` tokens starting at i·seq_len. Global sample number g (counting
micro-batches of all ranks in step order) maps to sample perm_e[g mod n] where
e = g div n and perm_e is a permutation seeded by (seed, e). Any step on any rank
can therefore be produced directly, which makes resumption exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from strata.errors import JobError
from strata.shards import check_token_ids, read_index, read_tokens

if TYPE_CHECKING:
    import torch


class Samples(Protocol):
    """What training reads: fixed-length samples by global sample number (`ShardSamples`,
    or `strata.train.blend.BlendedSamples` over several shard directories)."""

    seq_len: int
    num_samples: int
    manifest: dict[str, Any]

    @property
    def vocab_size(self) -> int: ...

    def rows(self, first_global_index: int, size: int) -> np.ndarray[Any, Any]: ...

    def batch(self, first_global_index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def in_order(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]: ...


class ShardSamples:
    """Fixed-length samples over every shard listed in a manifest (checked by `strata.shards`).

    With `verify`, every token id must be below the manifest's `vocab_size`, the vocabulary the
    model is built with (`strata.spec.models.build_model_config`); JobError names the shard."""

    def __init__(
        self,
        shard_dir: Path,
        seq_len: int,
        seed: int,
        verify: bool = True,
        *,
        held_out: tuple[float, int] | None = None,
        part: Literal["train", "validation"] = "train",
    ) -> None:
        self.manifest, self.tokens = read_tokens(shard_dir, verify=verify)
        if verify:  # at job start (launcher, sweep); workers open the shards already checked
            check_token_ids(shard_dir, self.manifest, self.vocab_size)
        if held_out is not None:
            held, lengths = held_out_documents(shard_dir, self.manifest, *held_out)
            self.tokens = self.tokens[np.repeat(held if part == "validation" else ~held, lengths)]
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
        return self.rows_of(range(first_global_index, first_global_index + size))

    def rows_of(self, global_indices: Iterable[int]) -> np.ndarray[Any, Any]:
        """Rows of the given global sample numbers (in the seeded order, epoch after epoch)."""
        return self.rows_in_order(self._sample_index(g) for g in global_indices)

    def rows_in_order(self, indices: Iterable[int]) -> np.ndarray[Any, Any]:
        """Rows of samples by their place in the stream (no permutation)."""
        seq = self.seq_len
        return np.stack([np.asarray(self.tokens[i * seq : (i + 1) * seq + 1], np.int64) for i in indices])

    def batch(self, first_global_index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for `size` consecutive global sample numbers."""
        return inputs_and_targets(self.rows(first_global_index, size))

    def in_order(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of samples by their place in the stream (no permutation): the
        fixed validation set is samples 0 … N-1."""
        return inputs_and_targets(self.rows_in_order(indices))


def inputs_and_targets(rows: np.ndarray[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of `seq_len + 1` tokens as (inputs, targets) tensors shifted by one token."""
    import torch

    block = torch.from_numpy(rows)
    return block[:, :-1], block[:, 1:]


def held_out_documents(
    shard_dir: Path, manifest: dict[str, Any], fraction: float, seed: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Which documents (in manifest order, read from the `.idx` files) are held out, and every
    document's length: document i is held out when the i-th draw of a generator seeded `seed` is
    below `fraction`. The rule depends on the document index only, so every run and worker count
    holds out the same documents."""
    lengths = np.concatenate(
        [read_index(shard_dir / shard["idx"]).lengths for shard in manifest["shards"]]
        or [np.zeros(0, np.int32)]
    )
    return np.random.default_rng([seed, HOLD_OUT_STREAM]).random(len(lengths)) < fraction, lengths


HOLD_OUT_STREAM = 0x7A11D  # keeps the held-out draws apart from any sample-order seed


def validation_loss_sum(
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    samples: Samples,
    *,
    count: int,
    replica: int,
    replicas: int,
) -> torch.Tensor:
    """This replica's sum of per-sample mean losses over samples replica, replica + replicas, …
    of the first `count`; summed over replicas and divided by `count` it is the same for any
    replica count. Every replica makes the same number of forward calls (ZeRO-3 gathers weights
    in each), the surplus ones counted zero. `loss_of(x, y)` is one sample's mean loss."""
    import torch

    count = min(count, samples.num_samples)
    total = torch.zeros((), dtype=torch.float64)
    for call in range(-(-count // replicas)):
        index = call * replicas + replica
        x, y = samples.in_order([index if index < count else 0])
        loss = loss_of(x, y).detach().double().cpu()
        total += loss if index < count else 0.0
    return total


def global_index(
    *, step: int, micro: int, rank: int, accum_steps: int, world_size: int, micro_batch: int
) -> int:
    """First global sample number of (step, micro-step, rank)."""
    return ((step * accum_steps + micro) * world_size + rank) * micro_batch
