"""Token shards: the files training reads.

Layout of `shards/`:
- `shard_NNNNN.bin`: token ids, little-endian uint16, documents back to back, each
  ending in `<|endoftext|>`;
- `shard_NNNNN.idx`: little-endian int64 start offsets of each document in the .bin;
- `manifest.json`: format, dtype, vocab size, end-of-text id, and per shard its
  file name, tokens, documents and SHA-256, plus the totals.
Documents are shuffled with the job's seed before they are cut into shards.
Files are written to a temporary name and renamed, so a shard is whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT = "strata-shards-v1"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_shards(
    *,
    docs: list[np.ndarray[Any, Any]],
    out_dir: Path,
    tokens_per_shard: int,
    seed: int,
    vocab_size: int,
    eot_id: int,
) -> dict[str, Any]:
    """Shuffle documents, cut them into shards of about `tokens_per_shard`, write the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(docs))
    shards: list[dict[str, Any]] = []
    pending: list[np.ndarray[Any, Any]] = []
    pending_tokens = 0
    for i in order:
        pending.append(docs[i])
        pending_tokens += len(docs[i])
        if pending_tokens >= tokens_per_shard:
            shards.append(_write_one(out_dir, len(shards), pending))
            pending, pending_tokens = [], 0
    if pending:
        shards.append(_write_one(out_dir, len(shards), pending))
    manifest = {
        "format": FORMAT,
        "dtype": "uint16",
        "vocab_size": vocab_size,
        "eot_id": eot_id,
        "seed": seed,
        "total_tokens": sum(s["tokens"] for s in shards),
        "total_documents": sum(s["documents"] for s in shards),
        "shards": shards,
    }
    _atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    return manifest


def _write_one(out_dir: Path, index: int, docs: list[np.ndarray[Any, Any]]) -> dict[str, Any]:
    tokens = np.concatenate(docs).astype("<u2")
    starts = np.cumsum([0] + [len(d) for d in docs[:-1]]).astype("<i8")
    name = f"shard_{index:05d}"
    data = tokens.tobytes()
    _atomic_write(out_dir / f"{name}.bin", data)
    _atomic_write(out_dir / f"{name}.idx", starts.tobytes())
    return {
        "bin": f"{name}.bin",
        "idx": f"{name}.idx",
        "tokens": len(tokens),
        "documents": len(docs),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def load_manifest(shard_dir: Path) -> dict[str, Any]:
    """Read a shard directory's manifest."""
    return dict(json.loads((shard_dir / MANIFEST).read_text(encoding="utf-8")))
