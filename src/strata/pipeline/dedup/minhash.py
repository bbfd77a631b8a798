"""MinHash signatures over word n-grams, vectorized, bit-identical to datasketch's.

A signature is datasketch's `MinHash(scheme="affine32", hashfunc=ngram_hash)`: every
shingle's 32-bit hash is pre-mixed with the MurmurHash3 finalizer and sent through
`num_perm` affine permutations `a·h + b mod 2^32` whose parameters datasketch draws from
the seed; the signature is the minimum per permutation. Strata computes the same
values for a whole batch of documents in a few numpy operations instead of one
MinHash object per document: the shingle hash is an FNV-style fold of per-word CRC-32s,
so the n-grams of a document are hashed with n vector operations
(tests/pipeline/dedup/test_minhash.py checks equality with datasketch).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np
from datasketch import MinHash

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.pipeline import MinhashSpec

WORD = re.compile(r"\w+", re.UNICODE)
SCHEME = "affine32"
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
    """Lower-cased word n-grams; a text of at most n words is one shingle of all its words."""
    words = WORD.findall(text.lower())
    if len(words) <= ngram:
        return [tuple(words)]
    return [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


def _fmix32(h: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    h = np.asarray(h ^ (h >> U32(16)), dtype=U32)
    h = h * U32(0x85EBCA6B)
    h = h ^ (h >> U32(13))
    h = h * U32(0xC2B2AE35)
    return np.asarray(h ^ (h >> U32(16)), dtype=U32)


class Signer:
    """MinHash signatures for many texts at once."""

    def __init__(self, *, num_perm: int, ngram: int, seed: int) -> None:
        self.ngram = ngram
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        self.a = np.asarray(a, dtype=U32)
        self.b = np.asarray(b, dtype=U32)
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

    def _shingle_hashes(self, text: str) -> np.ndarray[Any, Any]:
        w = self._word_hashes(text)
        n = min(self.ngram, max(len(w), 1))
        count = max(len(w) - n + 1, 1)
        h = np.full(count, FNV_BASIS, dtype=U32)
        for k in range(n if len(w) else 0):
            h = (h ^ w[k : k + count]) * FNV_PRIME
        return h

    def signatures(self, texts: list[str]) -> np.ndarray[Any, Any]:
        """(len(texts), num_perm) uint32 signatures."""
        out = np.empty((len(texts), self.num_perm), dtype=U32)
        hashes = [self._shingle_hashes(t) for t in texts]
        sizes = np.array([len(h) for h in hashes], dtype=np.int64)
        start = 0
        while start < len(texts):  # blocks of whole documents, about BLOCK shingles each
            stop = start + 1 + int(np.searchsorted(np.cumsum(sizes[start + 1 :]), BLOCK))
            block = _fmix32(np.concatenate(hashes[start:stop]))
            offsets = np.concatenate([[0], np.cumsum(sizes[start : stop - 1])])
            permuted = np.empty_like(block)
            # One permutation at a time over a cache-sized vector: several times faster
            # than one (shingles x permutations) matrix.
            for k in range(self.num_perm):
                np.multiply(block, self.a[k], out=permuted)
                np.add(permuted, self.b[k], out=permuted)
                out[start:stop, k] = np.minimum.reduceat(permuted, offsets)
            start = stop
        return out


class MinhashSignatures:
    """map_batches stage: add `signature` (uint32 hash values) for kept rows."""

    def __init__(self, spec: MinhashSpec) -> None:
        self.signer = Signer(num_perm=spec.bands * spec.rows, ngram=spec.ngram, seed=spec.seed)

    def __call__(self, batch: Batch) -> Batch:
        keep = kept_mask(batch)
        signatures = np.zeros((len(keep), self.signer.num_perm), dtype=U32)
        texts = [str(t) for t, k in zip(batch["text"], keep, strict=True) if k]
        if texts:
            signatures[keep] = self.signer.signatures(texts)
        batch["signature"] = signatures
        return batch
