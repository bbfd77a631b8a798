"""Near-duplicate precision and recall of Strata's MinHash dedup against exact Jaccard.

Real documents (the demo corpus's Python documentation sections of at least 200 words) get
planted copies at several edit rates (a share of words replaced by other words of the
corpus, seeded). The truth is every pair whose exact word 5-gram Jaccard is at least 0.8,
over all pairs; the prediction is every pair that Strata's distributed clustering (Ray
Data, the pipeline's own stages) puts in one cluster.

Usage: .venv/bin/python benchmarks/near_duplicates.py [--originals 2000] [--cpus 2] [--bands 14 --rows 8]
Prints precision, recall, and recall per edit rate as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from itertools import combinations
from pathlib import Path

import ray

from strata.pipeline.dedup.clusters import BandRows, bucket_edges, connected_components
from strata.pipeline.dedup.minhash import WORD, MinhashSignatures, shingles
from strata.spec.pipeline import MinhashSpec

EDIT_RATES = [0.005, 0.01, 0.02, 0.04, 0.08, 0.15]


def plant(texts: list[str], rng: random.Random) -> list[tuple[str, str, float]]:
    """(text, origin, edit rate): the originals (rate 0) and one edited copy per rate, round robin."""
    vocabulary = sorted({w for t in texts for w in WORD.findall(t)})
    docs = [(t, f"orig{i}", 0.0) for i, t in enumerate(texts)]
    for i, text in enumerate(texts):
        rate = EDIT_RATES[i % len(EDIT_RATES)]
        words = text.split()
        for j in rng.sample(range(len(words)), max(1, int(rate * len(words)))):
            words[j] = rng.choice(vocabulary)
        docs.append((" ".join(words), f"orig{i}", rate))
    return docs


def truth_pairs(docs: list[tuple[str, str, float]], threshold: float) -> set[tuple[int, int]]:
    sets = [set(shingles(t, 5)) for t, _, _ in docs]
    return {
        (a, b)
        for a, b in combinations(range(len(docs)), 2)
        if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= threshold
    }


def predicted_pairs(
    docs: list[tuple[str, str, float]], spec: MinhashSpec, partitions: int
) -> set[tuple[int, int]]:
    rows = [{"id": str(n), "order": n, "text": t, "status": ""} for n, (t, _, _) in enumerate(docs)]
    verified = (
        ray.data.from_items(rows)
        .map_batches(MinhashSignatures(spec), batch_format="numpy")
        .map_batches(BandRows(spec.bands, spec.rows), batch_format="numpy")
        .groupby("bucket", num_partitions=partitions)
        .map_groups(bucket_edges(spec.threshold), batch_format="numpy")
    )
    edges = verified.filter(lambda r: r["b"] >= 0).drop_columns(["compared"])
    stars = connected_components(edges, partitions).to_pandas()
    clusters: dict[int, list[int]] = {}
    for node, parent in zip(stars["node"], stars["parent"], strict=True):
        clusters.setdefault(int(parent), [int(parent)]).append(int(node))
    return {(a, b) for members in clusters.values() for a, b in combinations(sorted(members), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/demo/corpus.jsonl"))
    parser.add_argument("--originals", type=int, default=2000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--bands", type=int, default=MinhashSpec().bands)
    parser.add_argument("--rows", type=int, default=MinhashSpec().rows)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows if not r["id"].startswith("planted/") and len(r["text"].split()) >= 200]
    docs = plant(texts[: args.originals], random.Random(0))
    spec = MinhashSpec(bands=args.bands, rows=args.rows)
    truth = truth_pairs(docs, spec.threshold)
    ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=tempfile.mkdtemp(prefix="sb-", dir="/tmp"), logging_level="WARNING")  # fmt: skip
    ray.data.DataContext.get_current().enable_progress_bars = False
    predicted = predicted_pairs(docs, spec, args.cpus)
    ray.shutdown()
    hits = truth & predicted
    print(json.dumps({"documents": len(docs), "true_pairs": len(truth), "predicted_pairs": len(predicted),
                      "precision": round(len(hits) / max(len(predicted), 1), 4),
                      "recall": round(len(hits) / max(len(truth), 1), 4),
                      "bands": spec.bands, "rows": spec.rows, "threshold": spec.threshold}))  # fmt: skip
    for rate in EDIT_RATES:
        planted = {(int(o.removeprefix("orig")), n) for n, (_, o, r) in enumerate(docs) if r == rate}
        true_here = planted & truth
        print(json.dumps({"edit_rate": rate, "true_pairs": len(true_here),
                          "recall": round(len(true_here & predicted) / max(len(true_here), 1), 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
