"""Dataset blends: training samples drawn from several shard directories in fixed proportions,
in an order that needs no loader state.

Global samples are taken in blocks of BLOCK. Within a block, position p goes to the source
whose count falls furthest behind its weight, argmax_i(w_i · (p + 1) − c_i(p)) (Megatron-LM's
BlendedDataset assigns samples by the same rule), so any prefix of a block holds every
source within one sample of its share, and every block has the same pattern. Global sample
g = b · BLOCK + p of source i is that source's own sample b · n_i + r, where n_i counts the
source's positions in a block and r is p's rank among them; the source's seeded order
(`ShardSamples`, epoch after epoch) picks the row. Any step of any rank can be produced
directly, so resumption is exact at any step and worker count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from strata.errors import JobError
from strata.spec.train import BLEND_BLOCK as BLOCK  # samples per repeat of the pattern
from strata.train.data import ShardSamples, inputs_and_targets

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def blend_pattern(
    weights: Sequence[float], block: int = BLOCK
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Source of each position of a block and the running counts: (block,) source ids and
    (block + 1, sources) samples of each source among the first p positions. `weights` > 0,
    normalised here."""
    w = np.asarray(weights, np.float64) / float(np.sum(weights))
    source = np.empty(block, np.int64)
    counts = np.zeros((block + 1, len(w)), np.int64)
    for p in range(block):
        source[p] = int(np.argmax(w * (p + 1) - counts[p]))
        counts[p + 1] = counts[p]
        counts[p + 1, source[p]] += 1
    return source, counts


class BlendedSamples:
    """Fixed-length samples drawn from several `ShardSamples` with the given weights.

    `names` label the sources in the metrics. Every source must come from the same tokenizer
    (the manifests' tokenizer SHA-256, else their vocabulary and end-of-text id); JobError
    names the two directories that differ."""

    def __init__(
        self, sources: Sequence[ShardSamples], weights: Sequence[float], names: Sequence[str]
    ) -> None:
        if len(set(names)) != len(names):
            raise JobError(
                f"data.sources: two sources are labelled alike ({list(names)}); give them distinct `name`s"
            )
        check_same_tokenizer(sources, names)
        self.sources, self.names = list(sources), list(names)
        self.seq_len = sources[0].seq_len
        self.manifest = sources[0].manifest
        self.num_samples = sum(s.num_samples for s in sources)
        self._source, self._counts = blend_pattern(weights)
        self._per_block = self._counts[-1]
        self._rank = self._counts[np.arange(BLOCK), self._source]  # rank among its source's positions

    @property
    def vocab_size(self) -> int:
        return self.sources[0].vocab_size

    def _locate(self, global_index: int) -> tuple[int, int]:
        block, position = divmod(global_index, BLOCK)
        i = int(self._source[position])
        return i, block * int(self._per_block[i]) + int(self._rank[position])

    def drawn_tokens(self, samples: int) -> dict[str, int]:
        """Training tokens (`seq_len` per sample) each source gave to global samples 0 …
        `samples` − 1, by name: what a run has drawn after `samples` samples."""
        block, position = divmod(samples, BLOCK)
        counts = block * self._per_block + self._counts[position]
        return {name: int(c) * self.seq_len for name, c in zip(self.names, counts, strict=True)}

    def rows(self, first_global_index: int, size: int) -> np.ndarray[Any, Any]:
        """`size` consecutive global samples as int64 rows of `seq_len + 1` tokens."""
        return self.rows_of(range(first_global_index, first_global_index + size))

    def rows_of(self, global_indices: Iterable[int]) -> np.ndarray[Any, Any]:
        """Rows of the given global sample numbers, each from its source's seeded order."""
        return np.stack([self.sources[i].rows_of([k])[0] for i, k in map(self._locate, global_indices)])

    def rows_in_order(self, indices: Iterable[int]) -> np.ndarray[Any, Any]:
        """Rows by blend position without the sources' permutations: the validation set."""
        located = (self._locate(g) for g in indices)
        return np.stack(
            [self.sources[i].rows_in_order([k % self.sources[i].num_samples])[0] for i, k in located]
        )

    def batch(self, first_global_index: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for `size` consecutive global sample numbers."""
        return inputs_and_targets(self.rows(first_global_index, size))

    def in_order(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of the blend's validation samples `indices`."""
        return inputs_and_targets(self.rows_in_order(indices))


def check_same_tokenizer(sources: Sequence[ShardSamples], names: Sequence[str]) -> None:
    """JobError unless every source's manifest names the first one's tokenizer."""

    def identity(manifest: dict[str, Any]) -> tuple[Any, ...]:
        sha = (manifest.get("tokenizer") or {}).get("sha256")
        return (sha,) if sha else (manifest["vocab_size"], manifest["eot_id"])

    first = identity(sources[0].manifest)
    for source, name in zip(sources[1:], names[1:], strict=True):
        if identity(source.manifest) != first:
            raise JobError(
                f"data.sources: {name} was written with another tokenizer than {names[0]} "
                f"({_describe(source.manifest)} against {_describe(sources[0].manifest)}); "
                "re-run its pipeline with the same `tokenizer.path`"
            )


def _describe(manifest: dict[str, Any]) -> str:
    sha = (manifest.get("tokenizer") or {}).get("sha256")
    if sha:
        return f"tokenizer SHA-256 {sha[:12]}…"
    return f"vocabulary {manifest['vocab_size']}, end-of-text id {manifest['eot_id']}"


def source_names(dirs: Sequence[str | Path]) -> list[str]:
    """Labels for shard directories: the pipeline output's name (the folder above `shards/`)."""
    names = [Path(d).parent.name if Path(d).name == "shards" else Path(d).name for d in dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in dirs]
