"""Semantic dedup as one Dataset stage: SemDeDup (Abbas et al., "SemDeDup: Data-efficient
learning at web-scale through semantic deduplication", 2023, arXiv:2303.09540).

1. Embed: each kept row of the spec's languages (or without a language) → a unit vector of
   its text (strata.pipeline.dedup.embed), in Ray tasks; rows of other languages pass;
   the (order, id, embedding) rows stay in Ray's object store, spread over the nodes.
2. Cluster: one Ray task trains spherical k-means (faiss) on a seeded sample of at most
   about `sample_documents` embeddings, chosen by a hash of each row's input position (the
   same rows for any block layout), unless the job reuses an earlier run's centroids
   (`centroids`); the centroids are written to `semantic/centroids.npy` under the output
   directory; every row is assigned its nearest centroid.
3. Within each cluster (rows of one cluster meet in one task: strata.pipeline.exchange),
   in input order, a document is a duplicate when its cosine similarity to any earlier
   document of the cluster reaches 1 - eps, the paper's rule (the maximum of the upper
   triangle of the cluster's similarity matrix). It is dropped (`dropped_semantic_duplicate`)
   and `duplicate_of` names its most similar earlier document; that one is either kept or
   itself a duplicate of an earlier one, so following `duplicate_of` ends at a kept document.
   The similarity matrix is computed in column blocks of at most CHUNK_VALUES values.

The driver holds the centroids (clusters x dimension floats) and one row count per cluster.
A cluster holds its rows in one task: about documents / clusters embeddings (1.5 KB each at
384 dimensions), so `clusters` should grow with the corpus.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockAccessor
from ray.data.expressions import col

from strata.errors import JobError
from strata.pipeline.aggregate import totals
from strata.pipeline.blockwise import Blocks, Rows, blocks_of
from strata.pipeline.dedup.embed import dimension, embed_rows, model_directory
from strata.pipeline.documents import Batch, kept_rows, marked_duplicates
from strata.pipeline.exchange import FIBONACCI, dataset, left_join, map_groups
from strata.spec.dedup import SemanticDedupSpec, centroids_shape_problem
from strata.storage import Location

logger = logging.getLogger(__name__)

SEMANTIC_DROP = "dropped_semantic_duplicate"
CHUNK_VALUES = 1 << 24  # similarity values computed at once in a cluster (64 MiB of float32)


def empty_report() -> dict[str, Any]:
    """The report of a run that embedded nothing (semantic dedup off, or no document left)."""
    return {
        "embedded": 0,
        "other_languages": 0,
        "sampled": 0,
        "clusters": 0,
        "largest_cluster": 0,
        "duplicates": 0,
    }


def semantic_duplicates(
    rows: Rows, spec: SemanticDedupSpec, partitions: int, centroids_out: Location
) -> tuple[Blocks, dict[str, Any]]:
    """Mark semantic duplicates among the kept rows; return the rows and the report. The
    centroids (trained, or `spec.centroids`) are written to `centroids_out` (.npy, float32,
    shape (clusters, dimension)) for a later run to reuse.

    Raises JobError when the model cannot be loaded or the centroids do not fit it (before
    any document is embedded).
    """
    report = empty_report()
    languages = frozenset(spec.languages)
    blocks = blocks_of(rows)
    kept = kept_rows(dataset(blocks))
    if languages:  # rows without a language (language ID off) are embedded
        before = kept.count()
        kept = kept.filter(expr=(col("language") == "") | col("language").is_in(sorted(languages)))
        report["embedded"] = kept.count()
        report["other_languages"] = before - report["embedded"]
    else:
        report["embedded"] = kept.count()
    if report["embedded"] == 0:
        return blocks, report
    report["model"] = spec.model or "all-MiniLM-L6-v2 (packaged)"
    report["dimension"] = checked_dimension(spec)
    embedded = (
        kept.select_columns(["order", "id", "text"])
        .map_batches(embed_rows(spec.model, spec.max_tokens), batch_format="numpy")
        .materialize()
    )
    if spec.centroids:
        centroids = load_centroids(spec.centroids)
        report["centroids_from"] = spec.centroids
        logger.info("semantic dedup: %d clusters from %s (clusters: ignored)", len(centroids), spec.centroids)
    else:
        sample, report["sampled"] = _sample(embedded, report["embedded"], spec)
        centroids = trained_centroids(sample, spec)
    buffer = io.BytesIO()
    np.save(buffer, centroids)
    centroids_out.write_bytes(buffer.getvalue())
    report["clusters"], report["centroids"] = len(centroids), str(centroids_out)
    assigned = embedded.map_batches(_nearest_centroid(centroids), batch_format="numpy").materialize()
    sizes = totals(assigned, ["cluster"], ["one"])
    report["largest_cluster"] = max(row["one"] for row in sizes)
    marks = map_groups(
        assigned.drop_columns(["one"]).to_arrow_refs(), "cluster", cluster_duplicates(spec.eps), partitions
    )
    report["duplicates"] = dataset(marks).count() if marks else 0
    logger.info(
        "semantic dedup: %d documents in %d clusters (largest %d), %d duplicates at similarity >= %.3f",
        report["embedded"],
        report["clusters"],
        report["largest_cluster"],
        report["duplicates"],
        1 - spec.eps,
    )
    if not report["duplicates"]:
        return blocks, report
    return left_join(blocks, marks, "order", _mark, partitions), report


def checked_dimension(spec: SemanticDedupSpec) -> int:
    """The model's embedding size, loading it here (the runner calls this before any work).

    Raises JobError naming `dedup.semantic.model` when the model is missing or does not load.
    """
    directory = model_directory(spec.model)
    try:
        size = dimension(directory, spec.max_tokens)
    except (OSError, ValueError, KeyError) as exc:
        raise JobError(
            f"dedup.semantic.model: {directory} is not a sentence-transformers or Hugging Face "
            f"model this version loads ({exc}); give another directory, or leave model empty"
        ) from exc
    if spec.centroids:
        shape = load_centroids(spec.centroids).shape
        if shape[1] != size:
            raise JobError(
                f"dedup.semantic.centroids: {spec.centroids} holds {shape[0]} centroids of {shape[1]} "
                f"dimensions, but {directory} embeds {size}: reuse the centroids of a run with this "
                "model, or leave centroids empty to train new ones"
            )
    return size


def load_centroids(path: str) -> np.ndarray[Any, Any]:
    """Saved centroids: float32, shape (clusters, dimension).

    Raises JobError naming `dedup.semantic.centroids` when the file is not such an array.
    """
    try:
        centroids = np.load(io.BytesIO(Location(path).read_bytes()), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise JobError(
            f"dedup.semantic.centroids: {path} is not a .npy array of numbers ({type(exc).__name__})"
        ) from exc
    if problem := centroids_shape_problem(centroids):
        raise JobError(f"dedup.semantic.centroids: {path} {problem}")
    norms = np.linalg.norm(centroids, axis=1)
    if not np.all(np.isfinite(norms) & (norms > 0)):
        raise JobError(
            f"dedup.semantic.centroids: {path} has rows that are zero, NaN or infinite: not the unit "
            "centroids a run writes; leave centroids empty to train new ones"
        )
    return np.asarray(centroids, dtype=np.float32)


def _sample(embedded: ray.data.Dataset, count: int, spec: SemanticDedupSpec) -> tuple[ray.data.Dataset, int]:
    """The k-means sample: about `sample_documents` of the `count` rows, by hash; drawn again at
    4x the fraction while it holds fewer rows than clusters (a small sample can draw none)."""
    fraction = min(1.0, spec.sample_documents / count)
    while True:
        sample = embedded.map_batches(_sampled(fraction, spec.seed), batch_format="numpy").materialize()
        drawn = sample.count()
        if drawn >= min(spec.clusters, count) or fraction == 1.0:
            return sample, drawn
        fraction = min(1.0, 4 * fraction)


def _sampled(fraction: float, seed: int) -> Any:
    """map_batches: the rows whose hash of (input position, seed) falls under `fraction`."""
    threshold = np.uint64(min(2**53, int(fraction * 2**53)))

    def sample(batch: Batch) -> Batch:
        mixed = (batch["order"].astype(np.uint64) + np.uint64(seed % 2**32) * np.uint64(2**32)) * FIBONACCI
        keep = (mixed >> np.uint64(11)) < threshold
        return {column: values[keep] for column, values in batch.items()}

    return sample


def train_centroids(
    vectors: np.ndarray[Any, Any], clusters: int, iterations: int, seed: int
) -> np.ndarray[Any, Any]:
    """Spherical k-means (faiss, one thread: the same centroids every run) on unit vectors in
    input order, shape (n, d); returns min(clusters, n) unit centroids, shape (k, d)."""
    import faiss

    k = min(clusters, len(vectors))
    faiss.omp_set_num_threads(1)
    kmeans = faiss.Kmeans(vectors.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
    return np.asarray(kmeans.centroids, dtype=np.float32)


def trained_centroids(sample: ray.data.Dataset, spec: SemanticDedupSpec) -> np.ndarray[Any, Any]:
    """The centroids of k-means on the sample, trained in one Ray task; only they (clusters x
    dimension floats) come back to the driver."""
    return ray.get(  # type: ignore[no-any-return]
        _train_centroids.remote(spec.clusters, spec.iterations, spec.seed, *sample.to_arrow_refs())
    )


@ray.remote
def _train_centroids(clusters: int, iterations: int, seed: int, *blocks: Any) -> np.ndarray[Any, Any]:
    """train_centroids on the sampled rows' embeddings, ordered by input position."""
    batches = [BlockAccessor.for_block(b).to_batch_format("numpy") for b in blocks]
    batches = [b for b in batches if len(b.get("order", ()))]
    order = np.concatenate([b["order"] for b in batches])
    vectors = np.concatenate([np.asarray(b["embedding"], dtype=np.float32) for b in batches])
    return train_centroids(vectors[np.argsort(order, kind="stable")], clusters, iterations, seed)


def _nearest_centroid(centroids: np.ndarray[Any, Any]) -> Any:
    """map_batches: each row's `cluster` (the centroid of largest dot product) and `one` (1)."""

    def assign(batch: Batch) -> Batch:
        vectors = np.asarray(batch["embedding"], dtype=np.float32)
        cluster = np.argmax(vectors @ centroids.T, axis=1).astype(np.int64)
        return {**batch, "cluster": cluster, "one": np.ones(len(cluster), np.int64)}

    return assign


def nearest_earlier(vectors: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """For unit vectors in input order, shape (n, d): each row's largest cosine similarity to
    an earlier row (-inf for the first row) and that row's index, shapes (n,). Computed in
    column blocks of at most CHUNK_VALUES values."""
    n = len(vectors)
    best = np.full(n, -np.inf, dtype=np.float32)
    best_of = np.zeros(n, dtype=np.int64)
    step = max(1, CHUNK_VALUES // max(n, 1))
    for start in range(0, n, step):
        stop = min(n, start + step)
        sims = vectors[:stop] @ vectors[start:stop].T  # rows: every earlier doc; columns: this block
        earlier = np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
        sims = np.where(earlier, sims, -np.inf)
        if stop > 1:
            best_of[start:stop] = np.argmax(sims, axis=0)
            best[start:stop] = sims[best_of[start:stop], np.arange(stop - start)]
    return best, best_of


def cluster_duplicates(eps: float) -> Any:
    """map_groups over one cluster's rows: a row per duplicate (`order`, `semantic_duplicate_of`)."""

    def duplicates(rows: Batch) -> Batch:
        ordered = np.argsort(rows["order"], kind="stable")
        vectors = np.asarray(rows["embedding"], dtype=np.float32)[ordered]
        best, best_of = nearest_earlier(vectors)
        hit = best >= np.float32(1 - eps)
        ids = rows["id"][ordered]
        return {
            "order": rows["order"][ordered][hit],
            "semantic_duplicate_of": ids[best_of[hit]].astype(object),
        }

    return duplicates


def _mark(table: pa.Table) -> pa.Table:
    """Documents joined with their duplicate rows (column absent where a partition has none), marked."""
    return marked_duplicates(table, "semantic_duplicate_of", SEMANTIC_DROP)
