"""Strata's vectorized MinHash gives exactly datasketch's signatures, at any batch size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datasketch import MinHash

from strata.pipeline.dedup.minhash import MinhashSignatures, Signer, ngram_hash, shingles
from strata.spec.pipeline import MinhashSpec

CORPUS = Path("data/demo/corpus.jsonl")


def test_signatures_equal_datasketch_with_the_same_shingle_hash() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:300]
    texts = [json.loads(line)["text"] for line in lines] + ["", "one", "two words", "Ünïcode wörds ok"]
    signer = Signer(num_perm=64, ngram=5, seed=7)
    ours = signer.signatures(texts)
    reference = MinHash.bulk(
        [shingles(t, 5) for t in texts], num_perm=64, seed=7, scheme="affine32", hashfunc=ngram_hash
    )
    assert ours.shape == (len(texts), 64)
    for row, sketch in zip(ours, reference, strict=True):
        assert (row == sketch.hashvalues).all()


def test_signature_does_not_depend_on_batching() -> None:
    texts = [f"document {i} " + "shared words in every document " * (i % 5 + 1) for i in range(50)]
    signer = Signer(num_perm=32, ngram=3, seed=1)
    whole = signer.signatures(texts)
    pieces = np.concatenate([signer.signatures(texts[i : i + 7]) for i in range(0, 50, 7)])
    assert (whole == pieces).all()


def test_stage_signs_only_kept_rows() -> None:
    batch = {
        "text": np.array(["kept text here", "dropped"], dtype=object),
        "status": np.array(["", "dropped_gopher_too_few_words"], dtype=object),
    }
    signatures = MinhashSignatures(MinhashSpec(bands=4, rows=2))(batch)["signature"]
    assert signatures.shape == (2, 8)
    assert signatures[0].any() and not signatures[1].any()
