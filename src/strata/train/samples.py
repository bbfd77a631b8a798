"""A train job's samples: its shard directory or blend of directories (`data.shards` or
`data.sources`), less the documents `data.validation.fraction` holds out, and its
validation samples."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from strata.spec.train import TrainDataSpec, TrainJob
from strata.train.blend import BlendedSamples, source_names
from strata.train.data import Samples, ShardSamples


def training_samples(job: TrainJob, *, verify: bool = True) -> Samples:
    """The job's training samples: its shards (or blend) less the held-out documents."""
    return data_samples(job.data, job.model.seq_len, job.seed, verify=verify)


def validation_samples(job: TrainJob, *, verify: bool = True) -> Samples | None:
    """The job's held-out samples (its validation shards, or the held-out documents of each
    source, blended with the training weights), or None."""
    v = job.data.validation
    if v is None:
        return None
    if v.shards is not None:
        return ShardSamples(Path(v.shards), job.model.seq_len, job.seed, verify)
    return data_samples(job.data, job.model.seq_len, job.seed, verify=verify, part="validation")


def data_samples(
    data: TrainDataSpec,
    seq_len: int,
    seed: int,
    *,
    verify: bool = True,
    part: Literal["train", "validation"] = "train",
) -> Samples:
    """Samples of `seq_len` + 1 tokens over `data`'s shard directory or blend, in the order
    `seed` gives: the training part, or the documents `data.validation.fraction` holds out.
    JobError for shards that are missing or damaged, or a blend of two tokenizers."""
    v = data.validation
    held_out = (v.fraction, v.seed) if v is not None and v.fraction is not None else None
    sources = data.blend()
    opened = [
        ShardSamples(Path(s.shards), seq_len, seed, verify, held_out=held_out, part=part) for s in sources
    ]
    if data.sources is None:
        return opened[0]
    derived = source_names([s.shards for s in sources])
    names = [s.name or name for s, name in zip(sources, derived, strict=True)]
    return BlendedSamples(opened, [s.weight for s in sources], names)
