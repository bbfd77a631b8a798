"""The pipeline's last step: shuffle tokenized documents with the job's seed, cut them into
shards of about `tokens_per_shard` tokens and write them in the training format
(strata.shards: `.bin/.idx`, dtype by vocabulary, manifest with checksums)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from strata.shards import TokenizedDocument, token_dtype, write_manifest, write_shard

__all__ = ["TokenizedDocument", "write_shards"]


def write_shards(
    *,
    docs: list[TokenizedDocument],
    out_dir: Path,
    tokens_per_shard: int,
    seed: int,
    vocab_size: int,
    eot_id: int,
    tokenizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Shuffle documents in memory, cut them into shards of about `tokens_per_shard`, write the
    manifest (with `tokenizer`'s record, as `write_manifest` takes it). For documents that fit in one process (tests, fixtures); the pipeline writes each
    shard on a worker (strata.pipeline.assemble) and the manifest with `write_manifest`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(vocab_size)
    order = np.random.default_rng(seed).permutation(len(docs))
    shards: list[dict[str, Any]] = []
    pending: list[TokenizedDocument] = []
    pending_tokens = 0
    for i in order:
        pending.append(docs[i])
        pending_tokens += len(docs[i].tokens)
        if pending_tokens >= tokens_per_shard:
            shards.append(write_shard(out_dir, len(shards), pending, dtype))
            pending, pending_tokens = [], 0
    if pending:
        shards.append(write_shard(out_dir, len(shards), pending, dtype))
    return write_manifest(
        out_dir, shards, vocab_size=vocab_size, eot_id=eot_id, seed=seed, tokenizer=tokenizer
    )
