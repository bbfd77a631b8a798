"""Strata's vectorized MinHash gives exactly datasketch's signatures, at any batch size; texts
without a word take no part in MinHash and are left to exact dedup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash
from hypothesis import given, settings
from hypothesis import strategies as st

from strata.pipeline.dedup.clusters import BandKeys, bucket_edges
from strata.pipeline.dedup.exact import mark_exact_duplicates, normalized_hash
from strata.pipeline.dedup.minhash import (
    MinhashSignatures,
    Signer,
    ngram_hash,
    permutations,
    shingle_array,
    shingles,
)
from strata.pipeline.dedup.near import MINHASH_DROP, _mark_near_duplicates
from strata.spec.dedup import MinhashSpec

CORPUS = Path("data/demo/corpus.jsonl")


def test_signatures_equal_datasketch_with_the_same_shingle_hash() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:300]
    texts = [json.loads(line)["text"] for line in lines] + [
        "",
        "one",
        "two words",
        "Ünïcode wörds ok",
        "🎉🔥",
    ]
    signer = Signer(num_perm=64, ngram=5, seed=7)
    ours = signer.signatures(texts)
    reference = MinHash.bulk(
        [shingles(t, 5) for t in texts], num_perm=64, seed=7, scheme="affine32", hashfunc=ngram_hash
    )
    assert ours.shape == (len(texts), 64)
    for row, sketch in zip(ours, reference, strict=True):
        assert (row == sketch.hashvalues).all()


@pytest.mark.parametrize(("num_perm", "seed"), [(1, 0), (112, 1), (128, 42), (256, 2**31 - 1)])
def test_permutations_are_datasketchs(num_perm: int, seed: int) -> None:
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    ours = permutations(num_perm, seed)
    assert ours[0].dtype == ours[1].dtype == np.uint32
    assert (ours[0] == a).all() and (ours[1] == b).all() and (ours[0] % 2 == 1).all()


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


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=6))
def test_any_unicode_text_signs_like_datasketch(texts: list[str]) -> None:
    signer = Signer(num_perm=16, ngram=3, seed=3)
    reference = MinHash.bulk(
        [shingles(t, 3) for t in texts], num_perm=16, seed=3, scheme="affine32", hashfunc=ngram_hash
    )
    for text, row, sketch in zip(texts, signer.signatures(texts), reference, strict=True):
        assert (row == sketch.hashvalues).all()
        assert list(signer.shingle_hashes(text)) == [ngram_hash(s) for s in shingles(text, 3)]


def test_short_and_wordless_texts_have_a_defined_shingle_set() -> None:
    assert shingles("Just three words!", 5) == [("just", "three", "words")]
    assert shingles("🎉🔥💯 !!! ---", 5) == []
    assert shingles("", 5) == []


WORDLESS = ["🎉🎉🎉 🥳", "🔥🔥 💯💯💯", "-- ... !!! ??? ---", "→ ← ↑ ↓ ⇒"]


def test_wordless_documents_get_no_shingles() -> None:
    texts = [*WORDLESS, "a real sentence with words"]
    batch = {"text": np.array(texts, dtype=object), "status": np.full(len(texts), "", object)}
    signed = MinhashSignatures(MinhashSpec(bands=4, rows=2))(batch)
    assert [len(shingle_array(s)) for s in signed["shingles"]] == [0, 0, 0, 0, 1]


def test_unrelated_wordless_documents_are_all_kept_and_copies_go_to_exact_dedup() -> None:
    texts = [*WORDLESS, WORDLESS[0], "the same short text", "The same short text!"]
    batch = {
        "id": np.array([f"d{i}" for i in range(len(texts))], object),
        "order": np.arange(len(texts)),
        "text": np.array(texts, object),
        "status": np.full(len(texts), "", object),
    }
    spec = MinhashSpec()
    signed = MinhashSignatures(spec)(dict(batch))
    keys = BandKeys(spec.bands, spec.rows)(signed)
    buckets: dict[int, list[int]] = {}
    for key, order in zip(keys["bucket"], keys["order"], strict=True):
        buckets.setdefault(int(key), []).append(int(order))  # order is the row here
    linked = set()
    for members in buckets.values():
        out = bucket_edges(spec.threshold)(
            {c: np.asarray(signed[c])[members] for c in ("order", "id", "signature", "shingles")}
        )
        linked |= {(str(a), str(b)) for a, b in zip(out["a_id"], out["b_id"], strict=True) if b}
    # Word-less documents take no part in MinHash; the two short texts have the same words.
    assert {str(signed["id"][o]) for o in keys["order"]} == {"d5", "d6"}
    assert linked == {("d6", "d5")}
    hashed = {**batch, "text_hash": np.array([normalized_hash(t) for t in texts], object)}
    status = dict(zip(batch["id"], mark_exact_duplicates(hashed)["status"], strict=True))
    assert [status[f"d{i}"] for i in range(5)] == ["", "", "", "", "dropped_exact_duplicate"]


def test_a_cluster_marks_only_its_kept_members_and_keeps_the_column_types() -> None:
    string = pa.large_string()  # as Ray Data's blocks from pandas hold text columns
    rows = pa.table(
        {
            "order": pa.array([1, 2, 3, 4], pa.int64()),
            "status": pa.array(["", "", "dropped_c4", ""], string),
            "duplicate_of": pa.array(["", "", "", ""], string),
            "cluster_size": pa.array([1, 1, 1, 1], pa.int64()),
            "near_duplicate_of": pa.array([None, "doc-1", "doc-1", ""], pa.string()),
            "members": pa.array([3, None, 1, 1], pa.int64()),
            "roots": pa.array([1, None, 0, 0], pa.int64()),
        }
    )
    marked = _mark_near_duplicates(rows)
    assert marked.schema == rows.drop_columns(["near_duplicate_of", "members", "roots"]).schema
    assert marked["status"].to_pylist() == ["", MINHASH_DROP, "dropped_c4", ""]  # dropped before: as it was
    assert marked["duplicate_of"].to_pylist() == ["", "doc-1", "", ""]
    assert marked["cluster_size"].to_pylist() == [3, 1, 1, 1]
    # A partition that no cluster reached has none of the cluster columns: rows pass as they are.
    bare = rows.drop_columns(["near_duplicate_of", "members", "roots"])
    assert _mark_near_duplicates(bare) == bare
