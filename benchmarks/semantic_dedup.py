"""Semantic dedup's precision and recall on planted paraphrases that MinHash misses, and its
docs/s per core for embedding and for clustering.

Corpus: the demo corpus's 2,078 Python documentation sections (data/demo/corpus.jsonl,
the `python-docs` source), plus one planted paraphrase for each of `--planted` originals of
at least 40 words (seeded), of three kinds in turn (`paraphrase`):

- `swapped`: 25% of the words swapped with their right neighbour (word order changed);
- `replaced`: 25% of the words replaced by other words of the same document;
- `reordered`: the sentences (and paragraphs) shuffled, then 10% of the words swapped.

Each planted copy's word 5-gram Jaccard with its original (Strata's MinHash shingles) is
printed: under 0.8, MinHash at threshold 0.8 does not catch it (the line also counts the
planted copies Strata's MinHash stages would link, by exact Jaccard >= 0.8).

Stages, timed in this process (run it under `taskset -c 0` for docs/s per core): the
embeddings (strata.pipeline.dedup.embed, the packaged all-MiniLM-L6-v2 at `--max-tokens`),
then the clustering: k-means on every document (strata.pipeline.dedup.semantic's
train_centroids, 20 iterations) with the nearest centroid of each, and, per eps, the
per-cluster duplicate search (cluster_duplicates). Truth: a planted copy is a duplicate of its original; every other
removal is counted against precision (`natural`: a pair of real sections the model finds
that similar).

Usage: taskset -c 0 .venv/bin/python benchmarks/semantic_dedup.py [--planted 300]
           [--clusters 20] [--eps 0.05 0.1 0.15] [--max-tokens 256]
Prints one JSON line on the corpus and the stages' speed, then one per eps.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from strata.pipeline.dedup.embed import embed, model_directory
from strata.pipeline.dedup.minhash import shingles
from strata.pipeline.dedup.semantic import cluster_duplicates, train_centroids

CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo" / "corpus.jsonl"
KINDS = ("swapped", "replaced", "reordered")
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def _swap(words: list[str], rate: float, rng: random.Random) -> list[str]:
    words = list(words)
    for i in rng.sample(range(len(words) - 1), int(rate * len(words))):
        words[i], words[i + 1] = words[i + 1], words[i]
    return words


def paraphrase(text: str, kind: str, rng: random.Random) -> str:
    """A planted paraphrase of `text` (at least 40 words) of one of KINDS."""
    words = text.split()
    if kind == "swapped":
        return " ".join(_swap(words, 0.25, rng))
    if kind == "replaced":
        for i in rng.sample(range(len(words)), int(0.25 * len(words))):
            words[i] = rng.choice(words)
        return " ".join(words)
    sentences = [s for s in SENTENCE.split(text) if s.strip()]
    rng.shuffle(sentences)
    return " ".join(_swap(" ".join(sentences).split(), 0.1, rng))


def jaccard(a: str, b: str) -> float:
    """Word 5-gram Jaccard of two texts, as Strata's MinHash verification computes it."""
    x, y = set(shingles(a, 5)), set(shingles(b, 5))
    return len(x & y) / max(1, len(x | y))


def planted_corpus(planted: int, seed: int = 0) -> tuple[list[str], list[str], dict[str, str]]:
    """(ids, texts, planted id → original id): the real sections, then the paraphrases."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["source"] == "python-docs"]
    rng = random.Random(seed)
    originals = rng.sample([r for r in rows if len(r["text"].split()) >= 40], planted)
    ids, texts = [r["id"] for r in rows], [r["text"] for r in rows]
    truth = {}
    for i, row in enumerate(originals):
        kind = KINDS[i % len(KINDS)]
        ids.append(f"planted/{kind}/{i}")
        texts.append(paraphrase(row["text"], kind, rng))
        truth[ids[-1]] = row["id"]
    return ids, texts, truth


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--planted", type=int, default=300)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.15])
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()

    ids, texts, truth = planted_corpus(args.planted)
    index = {d: i for i, d in enumerate(ids)}
    similar = [jaccard(texts[index[p]], texts[index[o]]) for p, o in truth.items()]
    directory = model_directory("")
    embed(texts[:2], directory, args.max_tokens)  # load the model outside the timing
    started = time.perf_counter()
    vectors = embed(texts, directory, args.max_tokens)
    embed_s = time.perf_counter() - started

    started = time.perf_counter()
    centroids = train_centroids(vectors, args.clusters, 20, 1)
    cluster = np.argmax(vectors @ centroids.T, axis=1)
    kmeans_s = time.perf_counter() - started
    order, id_array = np.arange(len(ids)), np.array(ids, dtype=object)
    results: dict[float, dict[str, Any]] = {}
    search_s = 0.0
    for eps in args.eps:
        started = time.perf_counter()
        find = cluster_duplicates(eps)
        dropped: dict[str, str] = {}
        for c in np.unique(cluster):
            rows = cluster == c
            out = find({"order": order[rows], "id": id_array[rows], "embedding": vectors[rows]})
            dropped.update(zip((ids[o] for o in out["order"]), out["semantic_duplicate_of"], strict=True))
        search_s += time.perf_counter() - started
        results[eps] = _scores(dropped, truth)
    print(
        json.dumps(
            {
                "documents": len(ids),
                "planted": len(truth),
                "planted_jaccard_max": round(max(similar), 3),
                "planted_minhash_would_link": sum(j >= 0.8 for j in similar),
                "clusters": len(centroids),
                "embed_docs_per_s": round(len(ids) / embed_s, 1),
                "kmeans_and_assign_docs_per_s": round(len(ids) / kmeans_s, 1),
                "duplicate_search_docs_per_s": round(len(ids) * len(args.eps) / search_s, 1),
                "max_tokens": args.max_tokens,
            }
        )
    )
    for eps, scores in results.items():
        print(json.dumps({"eps": eps, "similarity_at_least": round(1 - eps, 3), **scores}))


def _scores(dropped: dict[str, str], truth: dict[str, str]) -> dict[str, Any]:
    """Recall over the planted copies, precision over every removal, by kind."""
    found = {p for p in truth if p in dropped}
    natural = len(dropped) - len(found)
    by_kind = {
        kind: round(
            sum(p in found for p in truth if p.split("/")[1] == kind)
            / sum(p.split("/")[1] == kind for p in truth),
            3,
        )
        for kind in KINDS
    }
    return {
        "removed": len(dropped),
        "planted_removed": len(found),
        "natural_removed": natural,
        "recall": round(len(found) / len(truth), 3),
        "precision": round(len(found) / max(1, len(dropped)), 3),
        "recall_by_kind": by_kind,
    }


if __name__ == "__main__":
    main()
