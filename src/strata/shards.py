"""The training data format both sides share: token shards in Megatron-LM's indexed-dataset
format (`.bin` + `.idx`) and their manifest. The pipeline writes through this module,
training reads through it.

Layout of a shard directory:
- `shard_NNNNN.bin`: token ids, little-endian, documents back to back, each ending in the
  tokenizer's end-of-text id. The dtype follows the vocabulary (`token_dtype`): uint16 for up
  to 65,535 ids, int32 above.
- `shard_NNNNN.idx`: Megatron's `MMapIndexedDataset` index, little-endian:
  the 9 bytes `MMIDIDX\\x00\\x00`; version (uint64, 1); dtype code (uint8: 8 = uint16,
  4 = int32, Megatron's `DType` codes); sequence count N (uint64); document count N + 1
  (uint64); N sequence lengths in tokens (int32); N sequence start offsets in bytes
  (int64); N + 1 document indices (int64, 0..N: every sequence is one document).
  Megatron-LM and NeMo read it as it is.
- `manifest.json`: format, dtype, vocab size, end-of-text id, seed, the tokenizer (SHA-256
  of its tokenizer.json, end-of-text token, the file it was copied from or null when trained;
  written by the pipeline), and per shard its
  files, tokens, largest token id (`max_token_id`), documents, tokens per language and
  per source, and the SHA-256 of both files; plus the same totals for all shards.
Every file is written whole or not at all (strata.storage: a temporary name and a rename
locally, one upload on object storage), so a shard is whole or absent. The pipeline writes
to a local folder or an `s3://` prefix; training reads a local folder.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strata.errors import JobError
from strata.storage import Location

MANIFEST = "manifest.json"
FORMAT = "megatron-mmap-v1"
INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
_HEADER = "<QBQQ"  # version, dtype code, sequences, documents + 1
# Megatron-LM's `DType` codes (megatron/core/datasets/indexed_dataset.py) of the dtypes written here.
DTYPE_CODES = {"uint16": 8, "int32": 4}
UINT16_MAX_VOCAB = 65_535  # Megatron's own threshold is 65,500 (`DType.optimal_dtype`); ids stay < 65,535


def token_dtype(vocab_size: int) -> str:
    """The dtype of a shard's token ids: "uint16" for vocabularies up to 65,535 tokens, else "int32"."""
    return "uint16" if vocab_size <= UINT16_MAX_VOCAB else "int32"


def numpy_dtype(dtype: str) -> np.dtype[Any]:
    """The little-endian numpy dtype of a shard dtype name ("uint16" or "int32")."""
    return np.dtype("<u2" if dtype == "uint16" else "<i4")


@dataclass(frozen=True, slots=True)
class ShardIndex:
    """A parsed `.idx`: the token dtype, each sequence's length (tokens) and start (bytes)."""

    dtype: str
    lengths: np.ndarray[Any, Any]
    pointers: np.ndarray[Any, Any]


def index_bytes(lengths: np.ndarray[Any, Any], dtype: str = "uint16") -> bytes:
    """A Megatron `.idx` for sequences of these lengths (tokens of `dtype`), one document each."""
    n = len(lengths)
    itemsize = numpy_dtype(dtype).itemsize
    pointers = np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64) * itemsize]).astype("<i8")
    return b"".join(
        [
            INDEX_MAGIC,
            struct.pack(_HEADER, INDEX_VERSION, DTYPE_CODES[dtype], n, n + 1),
            np.asarray(lengths, dtype="<i4").tobytes(),
            pointers[:n].tobytes(),
            np.arange(n + 1, dtype="<i8").tobytes(),
        ]
    )


def read_index(path: Path) -> ShardIndex:
    """Parse a Megatron `.idx`; ValueError names the file and what is wrong with it."""
    data = path.read_bytes()
    header = len(INDEX_MAGIC) + struct.calcsize(_HEADER)
    if data[: len(INDEX_MAGIC)] != INDEX_MAGIC or len(data) < header:
        raise ValueError(f"{path}: not a Megatron index (bad magic bytes)")
    version, code, n, docs = struct.unpack(_HEADER, data[len(INDEX_MAGIC) : header])
    dtype = next((name for name, c in DTYPE_CODES.items() if c == code), None)
    if version != INDEX_VERSION or dtype is None:
        raise ValueError(f"{path}: index version {version}, dtype code {code}; expected 1 and 8 or 4")
    if len(data) != header + n * 4 + n * 8 + docs * 8:
        raise ValueError(f"{path}: index is {len(data)} bytes, its header promises another size")
    lengths = np.frombuffer(data, dtype="<i4", count=n, offset=header)
    pointers = np.frombuffer(data, dtype="<i8", count=n, offset=header + n * 4)
    return ShardIndex(dtype, lengths, pointers)


@dataclass(frozen=True, slots=True)
class TokenizedDocument:
    """One document's token ids and the groups its tokens count towards in the manifest."""

    tokens: np.ndarray[Any, Any]
    language: str
    source: str


def write_shard(
    out_dir: Location | Path, index: int, docs: Sequence[TokenizedDocument], dtype: str
) -> dict[str, Any]:
    """Write `shard_{index:05d}.bin/.idx` holding `docs` in order; return its manifest entry."""
    out = Location.of(out_dir)
    tokens = np.concatenate([d.tokens for d in docs]).astype(numpy_dtype(dtype))
    lengths = np.array([len(d.tokens) for d in docs], dtype=np.int64)
    name = f"shard_{index:05d}"
    data, index_data = tokens.tobytes(), index_bytes(lengths, dtype)
    (out / f"{name}.bin").write_bytes(data)
    (out / f"{name}.idx").write_bytes(index_data)
    by_language: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    for d in docs:
        by_language[d.language or "unknown"] += len(d.tokens)
        by_source[d.source] += len(d.tokens)
    return {
        "bin": f"{name}.bin",
        "idx": f"{name}.idx",
        "tokens": len(tokens),
        "max_token_id": int(tokens.max()) if len(tokens) else -1,
        "documents": len(docs),
        "tokens_by_language": dict(sorted(by_language.items())),
        "tokens_by_source": dict(sorted(by_source.items())),
        "sha256": hashlib.sha256(data).hexdigest(),
        "idx_sha256": hashlib.sha256(index_data).hexdigest(),
    }


def write_manifest(
    out_dir: Location | Path,
    shards: list[dict[str, Any]],
    *,
    vocab_size: int,
    eot_id: int,
    seed: int,
    tokenizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `manifest.json` for the shards `write_shard` wrote, and remove shard files it does
    not list (left by an earlier run that wrote more shards); return the manifest."""
    manifest = {
        "format": FORMAT,
        "dtype": token_dtype(vocab_size),
        "vocab_size": vocab_size,
        "eot_id": eot_id,
        "seed": seed,
        **({"tokenizer": tokenizer} if tokenizer is not None else {}),
        "total_tokens": sum(s["tokens"] for s in shards),
        "total_documents": sum(s["documents"] for s in shards),
        "tokens_by_language": _sum_counts(s["tokens_by_language"] for s in shards),
        "tokens_by_source": _sum_counts(s["tokens_by_source"] for s in shards),
        "shards": shards,
    }
    out = Location.of(out_dir)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    listed = {name for s in shards for name in (s["bin"], s["idx"])}
    for stale in out.names():
        if stale.startswith("shard_") and stale not in listed:
            (out / stale).remove()
    return manifest


def _sum_counts(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return dict(sorted(total.items()))


def load_manifest(shard_dir: Location | Path) -> dict[str, Any]:
    """Read a shard directory's manifest (local or on object storage)."""
    return dict(json.loads((Location.of(shard_dir) / MANIFEST).read_text()))


def read_tokens(shard_dir: Path, *, verify: bool = True) -> tuple[dict[str, Any], np.ndarray[Any, Any]]:
    """The manifest and every listed shard's tokens as one stream (memory-mapped, then joined).

    With `verify`, each `.bin` must match the manifest's SHA-256 and each `.idx` must parse,
    hold the manifest's dtype and cover exactly the shard's tokens. JobError names the file.
    """
    if not (shard_dir / MANIFEST).is_file():
        raise JobError(f"{shard_dir}: no {MANIFEST}; run the pipeline job that writes these shards first")
    manifest = load_manifest(shard_dir)
    dtype = manifest.get("dtype", "uint16")
    if dtype not in DTYPE_CODES:
        raise JobError(f"{shard_dir / MANIFEST}: dtype {dtype!r}; expected one of {', '.join(DTYPE_CODES)}")
    arrays = []
    for shard in manifest["shards"]:
        path = shard_dir / shard["bin"]
        if not path.is_file():
            raise JobError(f"{path}: shard listed in the manifest is missing")
        if verify:
            verify_shard(shard_dir, shard, dtype)
        arrays.append(np.memmap(path, dtype=numpy_dtype(dtype), mode="r"))
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, numpy_dtype(dtype))
    return manifest, tokens


def verify_shard(shard_dir: Path, shard: dict[str, Any], dtype: str) -> None:
    """Raise JobError unless a manifest entry's `.bin` has its checksum and its `.idx` covers it."""
    path = shard_dir / shard["bin"]
    if hashlib.sha256(path.read_bytes()).hexdigest() != shard["sha256"]:
        raise JobError(f"{path}: checksum does not match the manifest; the shard is corrupt")
    index_path = shard_dir / shard["idx"]
    if not index_path.is_file():
        raise JobError(f"{index_path}: index listed in the manifest is missing")
    try:
        index = read_index(index_path)
    except ValueError as error:
        raise JobError(f"{error}; the shard index is corrupt") from error
    if index.dtype != dtype:
        raise JobError(f"{index_path}: index holds {index.dtype} tokens, the manifest says {dtype}")
    if int(index.lengths.sum()) != shard["tokens"]:
        raise JobError(
            f"{index_path}: index covers {int(index.lengths.sum())} tokens, the manifest says {shard['tokens']}"
        )


SCAN_CHUNK_TOKENS = 1 << 24  # 64 MiB of int32 ids per read when a manifest records no max_token_id


def max_token_id(shard_dir: Path, shard: dict[str, Any], dtype: str) -> int:
    """The largest token id of a shard: its manifest entry's `max_token_id`, or (for manifests
    written before it was recorded) a scan of the memory-mapped `.bin` in chunks; -1 if empty."""
    if "max_token_id" in shard:
        return int(shard["max_token_id"])
    tokens = np.memmap(shard_dir / shard["bin"], dtype=numpy_dtype(dtype), mode="r")
    chunks = (int(tokens[i : i + SCAN_CHUNK_TOKENS].max()) for i in range(0, len(tokens), SCAN_CHUNK_TOKENS))
    return max(chunks, default=-1)


def check_token_ids(shard_dir: Path, manifest: dict[str, Any], vocab_size: int) -> None:
    """Raise JobError naming the first shard holding a token id the model's `vocab_size` rows
    cannot embed (an id >= vocab_size would fail deep inside the first forward pass, or on GPU
    as an opaque device-side assert)."""
    dtype = manifest.get("dtype", "uint16")
    for shard in manifest["shards"]:
        largest = max_token_id(shard_dir, shard, dtype)
        if largest >= vocab_size:
            raise JobError(
                f"{shard_dir / shard['bin']}: token id {largest} is outside the model's vocabulary of "
                f"{vocab_size} (ids 0..{vocab_size - 1}); the shards and the manifest's vocab_size disagree: "
                "rewrite the shards with the tokenizer that made them"
            )
