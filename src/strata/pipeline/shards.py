"""Token shards in Megatron-LM's indexed-dataset format (`.bin` + `.idx`), and their manifest.

Layout of `shards/`:
- `shard_NNNNN.bin`: token ids, little-endian uint16, documents back to back, each
  ending in `<|endoftext|>`.
- `shard_NNNNN.idx`: Megatron's `MMapIndexedDataset` index, little-endian:
  the 9 bytes `MMIDIDX\\x00\\x00`; version (uint64, 1); dtype code (uint8, 8 = uint16);
  sequence count N (uint64); document count N + 1 (uint64); N sequence lengths in tokens
  (int32); N sequence start offsets in bytes (int64); N + 1 document indices (int64,
  0..N: every sequence is one document). Megatron-LM and NeMo read it as it is.
- `manifest.json`: format, dtype, vocab size, end-of-text id, seed, and per shard its
  files, tokens, documents, tokens per language and per source, and the SHA-256 of
  both files; plus the same totals for all shards.
The pipeline shuffles documents across shards with the job's seed (strata.pipeline.assemble).
Every file is written to a temporary name and renamed, so a shard is whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strata.files import atomic_write

MANIFEST = "manifest.json"
FORMAT = "megatron-mmap-v1"
INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
UINT16_CODE = 8


@dataclass(frozen=True, slots=True)
class TokenizedDocument:
    """One document's token ids and the groups it counts towards."""

    tokens: np.ndarray[Any, Any]
    language: str
    source: str


def index_bytes(lengths: np.ndarray[Any, Any]) -> bytes:
    """A Megatron `.idx` for uint16 sequences of these lengths, one document each."""
    n = len(lengths)
    pointers = np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64) * 2]).astype("<i8")
    return b"".join(
        [
            INDEX_MAGIC,
            struct.pack("<QBQQ", INDEX_VERSION, UINT16_CODE, n, n + 1),
            np.asarray(lengths, dtype="<i4").tobytes(),
            pointers[:n].tobytes(),
            np.arange(n + 1, dtype="<i8").tobytes(),
        ]
    )


def read_index(path: Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Sequence lengths (tokens) and byte offsets from a Megatron `.idx` of uint16 tokens."""
    data = path.read_bytes()
    header = len(INDEX_MAGIC) + struct.calcsize("<QBQQ")
    if data[: len(INDEX_MAGIC)] != INDEX_MAGIC or len(data) < header:
        raise ValueError(f"{path}: not a Megatron index (bad magic bytes)")
    version, code, n, docs = struct.unpack("<QBQQ", data[len(INDEX_MAGIC) : header])
    if version != INDEX_VERSION or code != UINT16_CODE:
        raise ValueError(f"{path}: index version {version}, dtype code {code}; expected 1 and 8 (uint16)")
    if len(data) != header + n * 4 + n * 8 + docs * 8:
        raise ValueError(f"{path}: index is {len(data)} bytes, its header promises another size")
    lengths = np.frombuffer(data, dtype="<i4", count=n, offset=header)
    pointers = np.frombuffer(data, dtype="<i8", count=n, offset=header + n * 4)
    return lengths, pointers


def write_shards(
    *,
    docs: list[TokenizedDocument],
    out_dir: Path,
    tokens_per_shard: int,
    seed: int,
    vocab_size: int,
    eot_id: int,
) -> dict[str, Any]:
    """Shuffle documents in memory, cut them into shards of about `tokens_per_shard`, write the
    manifest. For documents that fit in one process (tests, fixtures); the pipeline writes each
    shard on a worker (strata.pipeline.assemble) and the manifest with `write_manifest`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(docs))
    shards: list[dict[str, Any]] = []
    pending: list[TokenizedDocument] = []
    pending_tokens = 0
    for i in order:
        pending.append(docs[i])
        pending_tokens += len(docs[i].tokens)
        if pending_tokens >= tokens_per_shard:
            shards.append(write_shard(out_dir, len(shards), pending))
            pending, pending_tokens = [], 0
    if pending:
        shards.append(write_shard(out_dir, len(shards), pending))
    return write_manifest(out_dir, shards, seed=seed, vocab_size=vocab_size, eot_id=eot_id)


def write_manifest(
    out_dir: Path, shards: list[dict[str, Any]], *, seed: int, vocab_size: int, eot_id: int
) -> dict[str, Any]:
    """Write `manifest.json` listing `shards` (records of `write_shard`, in order) with their
    totals, and remove the shard files it does not list (left by an earlier run)."""
    manifest = {
        "format": FORMAT,
        "dtype": "uint16",
        "vocab_size": vocab_size,
        "eot_id": eot_id,
        "seed": seed,
        "total_tokens": sum(s["tokens"] for s in shards),
        "total_documents": sum(s["documents"] for s in shards),
        "tokens_by_language": _sum_counts(s["tokens_by_language"] for s in shards),
        "tokens_by_source": _sum_counts(s["tokens_by_source"] for s in shards),
        "shards": shards,
    }
    atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2).encode("utf-8"))
    listed = {name for s in shards for name in (s["bin"], s["idx"])}
    for stale in sorted(out_dir.glob("shard_*")):
        if stale.name not in listed:
            stale.unlink()
    return manifest


def _sum_counts(counts: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return dict(sorted(total.items()))


def write_shard(out_dir: Path, index: int, docs: list[TokenizedDocument]) -> dict[str, Any]:
    """Write `shard_<index>.bin/.idx` holding `docs` in this order; return its manifest record."""
    tokens = np.concatenate([d.tokens for d in docs]).astype("<u2")
    lengths = np.array([len(d.tokens) for d in docs], dtype=np.int64)
    name = f"shard_{index:05d}"
    data, index_data = tokens.tobytes(), index_bytes(lengths)
    atomic_write(out_dir / f"{name}.bin", data)
    atomic_write(out_dir / f"{name}.idx", index_data)
    by_language: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    for d in docs:
        by_language[d.language or "unknown"] += len(d.tokens)
        by_source[d.source] += len(d.tokens)
    return {
        "bin": f"{name}.bin",
        "idx": f"{name}.idx",
        "tokens": len(tokens),
        "documents": len(docs),
        "tokens_by_language": dict(sorted(by_language.items())),
        "tokens_by_source": dict(sorted(by_source.items())),
        "sha256": hashlib.sha256(data).hexdigest(),
        "idx_sha256": hashlib.sha256(index_data).hexdigest(),
    }


def load_manifest(shard_dir: Path) -> dict[str, Any]:
    """Read a shard directory's manifest."""
    return dict(json.loads((shard_dir / MANIFEST).read_text(encoding="utf-8")))
