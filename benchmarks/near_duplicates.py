"""Near-duplicate precision and recall of Strata's MinHash dedup against exact Jaccard, all pairs.

Corpus: `man` (default) reads every English manual page under /usr/share/man/man*/ (roff
macros and escapes stripped; real text whose near duplicates are natural: tools shipped in
several versions, Perl modules documented twice, OpenSSL and LLVM pages), or a JSONL file
with a `text` field. `--plant` adds one edited copy per document at one of six edit rates.

Truth: every pair whose exact word 5-gram Jaccard (Strata's `shingles`, each n-gram a
64-bit hash) is at least the threshold, over all pairs, found by prefix filtering (Bayardo,
Ma and Srikant, "Scaling up all pairs similarity search", WWW 2007): with shingles ordered
rarest first, two sets with Jaccard >= t share a shingle among the first |x| - ceil(t|x|) + 1
of each, so only pairs sharing such a prefix shingle are compared, exactly. Documents
without a word take no part (MinHash leaves them to exact dedup).

Prediction: Strata's own stages (MinhashSignatures, BandKeys, bucket_edges) with the buckets
grouped in this process and the edges joined by union-find into components rooted at the
earliest document (what clusters.connected_components computes across Ray workers, tested
against a union-find in tests/pipeline/dedup/test_clusters.py); `--verification estimated` verifies by
the estimated Jaccard of the signatures instead (Strata before exact verification).

Usage: .venv/bin/python benchmarks/near_duplicates.py [--corpus man|PATH] [--limit N]
           [--lsh 14x8 16x7 ...] [--verification exact estimated] [--plant]
Prints one JSON line on the corpus and truth, then one per bands x rows and verification:
pair precision and recall (pairs in one cluster against true pairs), and per removed
document, whether its Jaccard with the kept one reaches the threshold (precision) and
whether each document with an earlier near duplicate was removed (recall).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import re
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from strata.pipeline.dedup.clusters import BandKeys, bucket_edges
from strata.pipeline.dedup.minhash import WORD, MinhashSignatures, shingles
from strata.spec.dedup import MinhashSpec

EDIT_RATES = [0.005, 0.01, 0.02, 0.04, 0.08, 0.15]
MAN = Path("/usr/share/man")
TEXT_MACROS = {"SH", "SS", "B", "I", "BR", "IR", "BI", "RB", "IB", "RI", "IP", "TP", "SM", "SB"}
ROFF_ESCAPE = re.compile(
    r"\\(?:f(?:\[[^\]]*\]|\(..|.)|\(..|\*(?:\(..|\[[^\]]*\]|.)|s[+-]?\d|[&|^%:]|n(?:\(..|.))"
)


def roff_text(source: str) -> str:
    """Plain text of a manual page: request lines dropped, text macros' arguments kept, escapes removed."""
    lines = []
    for raw in source.splitlines():
        line = raw
        if raw.startswith((".", "'")):
            macro, _, rest = raw[1:].strip().partition(" ")
            if macro not in TEXT_MACROS:
                continue
            line = rest.replace('"', "")
        lines.append(ROFF_ESCAPE.sub("", line).replace("\\-", "-").replace("\\e", "\\"))
    return "\n".join(lines).strip()


def load_corpus(corpus: str) -> list[str]:
    if corpus == "man":
        pages = sorted(p for p in MAN.glob("man*/*.gz") if p.is_file() and not p.is_symlink())
        return [roff_text(gzip.open(p, "rt", encoding="utf-8", errors="replace").read()) for p in pages]
    lines = Path(corpus).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


def plant(texts: list[str], rng: random.Random) -> list[str]:
    """The texts, then one copy of each with a share of its words replaced (edit rates round robin)."""
    vocabulary = sorted({w for t in texts for w in WORD.findall(t)})
    copies = []
    for i, text in enumerate(texts):
        words = text.split()
        for j in rng.sample(range(len(words)), min(len(words), max(1, int(EDIT_RATES[i % 6] * len(words))))):
            words[j] = rng.choice(vocabulary)
        copies.append(" ".join(words))
    return texts + copies


def shingle_sets(texts: list[str], ngram: int) -> list[np.ndarray[Any, Any]]:
    """Sorted unique 64-bit hashes of each text's word n-grams (Python's tuple hash, one process)."""
    return [np.unique(np.array([hash(s) for s in shingles(t, ngram)], np.int64)) for t in texts]


def jaccard(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common)


def truth_pairs(sets: list[np.ndarray[Any, Any]], t: float) -> tuple[dict[tuple[int, int], float], int]:
    """Every pair (a < b) with exact Jaccard >= t, by prefix filtering; and the pairs compared."""
    tokens, df = np.unique(np.concatenate(sets), return_counts=True)
    prefix_docs: dict[int, list[int]] = defaultdict(list)
    for doc, s in enumerate(sets):
        if len(s):
            rarest = s[np.lexsort((s, df[np.searchsorted(tokens, s)]))]
            for token in rarest[: len(s) - math.ceil(t * len(s) - 1e-9) + 1]:
                prefix_docs[int(token)].append(doc)
    candidates = {(a, b) for docs in prefix_docs.values() for a, b in combinations(docs, 2)}
    pairs = {}
    for a, b in candidates:
        small, large = sorted((len(sets[a]), len(sets[b])))
        if small >= t * large and (j := jaccard(sets[a], sets[b])) >= t:
            pairs[(a, b)] = j
    return pairs, len(candidates)


def predicted_roots(texts: list[str], spec: MinhashSpec, estimated: bool) -> tuple[dict[int, int], int]:
    """Removed document → its cluster's earliest document; and the candidate pairs in buckets."""
    batch = {
        "id": np.array([str(n) for n in range(len(texts))], object),
        "order": np.arange(len(texts)),
        "text": np.array(texts, object),
        "status": np.full(len(texts), "", object),
    }
    rows = MinhashSignatures(spec)(batch)
    keys = BandKeys(spec.bands, spec.rows)(rows)
    buckets: dict[int, list[int]] = defaultdict(list)
    for key, order in zip(keys["bucket"], keys["order"], strict=True):
        buckets[int(key)].append(int(order))  # order is the row here
    verify = bucket_edges(spec.threshold)
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    compared = 0
    for members in buckets.values():
        if len(members) < 2:
            continue
        group = {c: rows[c][members] for c in ("order", "id", "signature", "shingles")}
        if estimated:  # signatures that agree on >= threshold of their values
            edges = _estimated_edges(group, spec.threshold)
        else:
            out = verify(group)
            compared += int(out["compared"].sum())
            edges = [(int(a), int(b)) for a, b in zip(out["a"], out["b"], strict=True) if b >= 0]
        for a, b in edges:
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
    return {n: root(n) for n in parent if root(n) != n}, compared


def _estimated_edges(group: dict[str, Any], threshold: float) -> list[tuple[int, int]]:
    order = np.argsort(group["order"])
    nodes, signatures = group["order"][order], np.stack(list(group["signature"]))[order]
    edges = []
    for i in range(1, len(nodes)):
        first = max(0, i - 64)
        hits = np.flatnonzero((signatures[first:i] == signatures[i]).mean(axis=1) >= threshold)
        if len(hits):
            edges.append((int(nodes[i]), int(nodes[first + hits[0]])))
    return edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="man")
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--lsh", nargs="+", default=[f"{MinhashSpec().bands}x{MinhashSpec().rows}"])
    parser.add_argument("--verification", nargs="+", choices=["exact", "estimated"], default=["exact"])
    parser.add_argument("--plant", action="store_true")
    args = parser.parse_args()
    texts = load_corpus(args.corpus)[: args.limit]
    texts = plant(texts, random.Random(0)) if args.plant else texts
    threshold, ngram = MinhashSpec().threshold, MinhashSpec().ngram
    start = time.perf_counter()
    sets = shingle_sets(texts, ngram)
    truth, truth_compared = truth_pairs(sets, threshold)
    duplicated = {b for _, b in truth}  # documents with an earlier one at Jaccard >= t
    partnered = {d for pair in truth for d in pair}  # documents with any other at Jaccard >= t
    print(json.dumps({
        "corpus": args.corpus, "documents": len(texts), "megabytes": round(sum(map(len, texts)) / 1e6, 1),
        "without_words": sum(len(s) == 0 for s in sets), "threshold": threshold, "true_pairs": len(truth),
        "duplicated_documents": len(duplicated), "truth_pairs_compared": truth_compared,
        "truth_s": round(time.perf_counter() - start, 1),
    }))  # fmt: skip
    for lsh in args.lsh:
        bands, rows = map(int, lsh.split("x"))
        for verification in args.verification:
            start = time.perf_counter()
            spec = MinhashSpec(bands=bands, rows=rows)
            removed, compared = predicted_roots(texts, spec, verification == "estimated")
            predict_s = time.perf_counter() - start
            clusters: dict[int, list[int]] = defaultdict(list)
            for node, root in removed.items():
                clusters[root].append(node)
            predicted = {
                p for root, nodes in clusters.items() for p in combinations(sorted([root, *nodes]), 2)
            }
            right = sum(jaccard(sets[d], sets[r]) >= threshold for d, r in removed.items())
            below = [round(jaccard(sets[d], sets[r]), 3) for d, r in removed.items() if d not in partnered]
            print(json.dumps({
                "bands": bands, "rows": rows, "verification": verification, "predicted_pairs": len(predicted),
                "pair_precision": round(len(truth.keys() & predicted) / max(len(predicted), 1), 4),
                "pair_recall": round(len(truth.keys() & predicted) / max(len(truth), 1), 4),
                "removed": len(removed), "removed_precision": round(right / max(len(removed), 1), 4),
                "removed_recall": round(len(duplicated & removed.keys()) / max(len(duplicated), 1), 4),
                "removed_without_any_true_duplicate": len(below),
                "their_jaccard_with_kept": [min(below, default=None), max(below, default=None)],
                "candidate_pairs": compared, "predict_s": round(predict_s, 1),
            }))  # fmt: skip


if __name__ == "__main__":
    main()
