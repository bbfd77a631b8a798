"""MinHash signatures over word n-grams, vectorized, bit-identical to datasketch's.

A signature is datasketch's `MinHash(scheme="affine32", hashfunc=ngram_hash)`: every
shingle's 32-bit hash is pre-mixed with the MurmurHash3 finalizer and sent through
`num_perm` affine permutations `a·h + b mod 2^32` whose parameters datasketch draws from
the seed (`permutations` makes the same draws, so the pipeline never imports datasketch,
whose import of scipy.integrate costs 0.5 s); the signature is the minimum per permutation. Strata computes the same
values for a whole batch of documents in a few numpy operations instead of one
MinHash object per document: the shingle hash is an FNV-style fold of per-word CRC-32s,
so the n-grams of a document are hashed with n vector operations
(tests/pipeline/dedup/test_minhash.py checks equality with datasketch).

Short documents: a text of 1..n words is one shingle of all its words, so it can only
match a text with the same words. A text without a word (no match of `WORD`: emoji,
symbols, punctuation) has no shingle: its signature is datasketch's empty MinHash (every
value 2^32 - 1) and it takes no part in MinHash dedup, since an empty set would make all
such texts "identical"; exact dedup still removes its copies. The stage carries each
document's shingle hashes so that clusters.py can verify candidate pairs by their exact
Jaccard.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.dedup import MinhashSpec

WORD = re.compile(r"\w+", re.UNICODE)
FNV_BASIS = np.uint32(0x811C9DC5)
FNV_PRIME = np.uint32(0x01000193)
# Shingles hashed together per permutation: a 256 KB vector stays in cache.
BLOCK = 65_536
WORD_CACHE_LIMIT = 1_000_000
U32 = np.uint32


def ngram_hash(ngram: bytes | tuple[str, ...]) -> int:
    """Scalar hash of one shingle (a tuple of words, or their UTF-8 join by spaces)."""
    words = ngram.decode("utf-8").split(" ") if isinstance(ngram, bytes) else ngram
    h = int(FNV_BASIS)
    for word in words:
        h = ((h ^ zlib.crc32(word.encode("utf-8"))) * int(FNV_PRIME)) & 0xFFFFFFFF
    return h


def shingles(text: str, ngram: int) -> list[tuple[str, ...]]:
    """Lower-cased word n-grams; a text of 1..n words is one shingle of all its words, none: []."""
    words = WORD.findall(text.lower())
    if not words:
        return []
    if len(words) <= ngram:
        return [tuple(words)]
    return [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


def _fmix32(h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    h = np.asarray(h ^ (h >> U32(16)), dtype=U32)
    h = h * U32(0x85EBCA6B)
    h = h ^ (h >> U32(13))
    h = h * U32(0xC2B2AE35)
    return np.asarray(h ^ (h >> U32(16)), dtype=U32)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """datasketch's affine32 permutation parameters (datasketch 2.x, `MinHash._init_permutations`):
    odd multipliers `a` and offsets `b`, uint32, shapes (num_perm,), drawn in that order from
    numpy's RandomState(seed) (tested equal to datasketch's)."""
    draws = np.random.RandomState(seed)
    a = draws.randint(0, 1 << 31, num_perm, dtype=U32) * U32(2) + U32(1)
    b = draws.randint(0, 1 << 32, num_perm, dtype=U32)
    return a, b


class Signer:
    """MinHash signatures for many texts at once."""

    def __init__(self, *, num_perm: int, ngram: int, seed: int) -> None:
        self.ngram = ngram
        self.a, self.b = permutations(num_perm, seed)
        self.num_perm = num_perm
        self._words: dict[str, int] = {}

    def _word_hashes(self, text: str) -> np.ndarray[Any, Any]:
        cache = self._words
        if len(cache) > WORD_CACHE_LIMIT:
            cache.clear()
        out = []
        for word in WORD.findall(text.lower()):
            h = cache.get(word)
            if h is None:
                h = cache[word] = zlib.crc32(word.encode("utf-8"))
            out.append(h)
        return np.array(out, dtype=U32)

    def shingle_hashes(self, text: str) -> np.ndarray[Any, Any]:
        """uint32 hashes of the text's shingles (`ngram_hash` of each), in text order; [] if no word."""
        w = self._word_hashes(text)
        n = min(self.ngram, len(w))
        h = np.full(len(w) - n + 1 if n else 0, FNV_BASIS, dtype=U32)
        for k in range(n):
            h = (h ^ w[k : k + len(h)]) * FNV_PRIME
        return h

    def signatures(self, texts: list[str]) -> np.ndarray[Any, Any]:
        """(len(texts), num_perm) uint32 signatures."""
        return self.signatures_of([self.shingle_hashes(t) for t in texts])

    def signatures_of(self, hashes: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        """(len(hashes), num_perm) uint32 signatures of shingle-hash arrays; 2^32 - 1 for an empty one."""
        out = np.full((len(hashes), self.num_perm), np.iinfo(U32).max, dtype=U32)
        signed = np.flatnonzero([len(h) for h in hashes])  # reduceat needs non-empty segments
        hashes = [hashes[i] for i in signed]
        sizes = np.array([len(h) for h in hashes], dtype=np.int64)
        start = 0
        while start < len(hashes):  # blocks of whole documents, about BLOCK shingles each
            stop = start + 1 + int(np.searchsorted(np.cumsum(sizes[start + 1 :]), BLOCK))
            block = _fmix32(np.concatenate(hashes[start:stop]))
            offsets = np.concatenate([[0], np.cumsum(sizes[start : stop - 1])])
            permuted = np.empty_like(block)
            rows = signed[start:stop]
            # One permutation at a time over a cache-sized vector: several times faster
            # than one (shingles x permutations) matrix.
            for k in range(self.num_perm):
                np.multiply(block, self.a[k], out=permuted)
                np.add(permuted, self.b[k], out=permuted)
                out[rows, k] = np.minimum.reduceat(permuted, offsets)
            start = stop
        return out


class MinhashSignatures:
    """map_batches stage: add `signature` (uint32 hash values) and `shingles` (the shingle
    hashes as little-endian uint32 bytes, in text order: a binary column, whatever the
    lengths) for kept rows; rows dropped earlier get zeros and no shingles."""

    def __init__(self, spec: MinhashSpec) -> None:
        self.signer = Signer(num_perm=spec.bands * spec.rows, ngram=spec.ngram, seed=spec.seed)

    def __call__(self, batch: Batch) -> Batch:
        keep = kept_mask(batch)
        signatures = np.zeros((len(keep), self.signer.num_perm), dtype=U32)
        shingle_bytes = np.full(len(keep), b"", dtype=object)
        rows = np.flatnonzero(keep)
        if len(rows):
            hashes = [self.signer.shingle_hashes(str(batch["text"][i])) for i in rows]
            signatures[rows] = self.signer.signatures_of(hashes)
            for i, shingle_hashes in zip(rows, hashes, strict=True):
                shingle_bytes[i] = shingle_hashes.astype("<u4").tobytes()
        batch["signature"] = signatures
        batch["shingles"] = shingle_bytes
        return batch


def shingle_array(data: bytes) -> np.ndarray[Any, Any]:
    """The uint32 shingle hashes of one `shingles` value."""
    return np.frombuffer(data, dtype="<u4").astype(U32)
