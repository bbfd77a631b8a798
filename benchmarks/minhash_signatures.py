"""MinHash signature throughput on one core: Strata's vectorized signer against datasketch's
`MinHash.bulk` and datatrove's signature step, on the same real corpus, in one run.

Usage:
    taskset -c 0 .venv/bin/python benchmarks/minhash_signatures.py \
        [--corpus data/demo/corpus.jsonl] [--datatrove-python /tmp/dtvenv/bin/python]

All three compute 112 hashes (14 bands x 8 rows) over word 5-grams of every document.
datatrove is not a Strata dependency: give the Python of a separate virtual environment
that has it (docs/benchmarks.md has the commands); without it that row is skipped.
Prints one JSON line per implementation (docs/s, best of --repeat) and the ratios;
`strata_stage_with_shingle_sets` is the pipeline stage, which also keeps each document's
sorted unique shingle hashes for exact verification.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datasketch import MinHash

from strata.pipeline.dedup.minhash import MinhashSignatures, Signer, shingles
from strata.spec.dedup import MinhashSpec

NUM_PERM = 112
DATATROVE = """
import json, sys, time
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
step = MinhashDedupSignature(output_folder="/tmp/strata-bench-datatrove", config=MinhashConfig())
best = 0.0
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    for text in texts:
        step.get_signature(step.get_shingles(text))
    best = max(best, len(texts) / (time.perf_counter() - start))
print(best)
"""


def best_rate(fn: Callable[[], object], docs: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = max(best, docs / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/demo/corpus.jsonl"))
    parser.add_argument("--datatrove-python", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    signer = Signer(num_perm=NUM_PERM, ngram=5, seed=1)

    def datasketch_bulk() -> object:
        sets = [[" ".join(g).encode("utf-8") for g in set(shingles(t, 5))] for t in texts]
        return MinHash.bulk(sets, num_perm=NUM_PERM, seed=1)

    stage = MinhashSignatures(MinhashSpec(bands=14, rows=8))
    batch = {"text": np.array(texts, object), "status": np.full(len(texts), "", object)}
    rates = {
        "strata": best_rate(lambda: signer.signatures(texts), len(texts), args.repeat),
        "strata_stage_with_shingle_sets": best_rate(lambda: stage(dict(batch)), len(texts), args.repeat),
        "datasketch_bulk": best_rate(datasketch_bulk, len(texts), args.repeat),
    }
    if args.datatrove_python:
        out = subprocess.run(
            [args.datatrove_python, "-c", DATATROVE, str(args.corpus), str(args.repeat)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rates["datatrove"] = float(out.stdout.strip().splitlines()[-1])
    cpus = sorted(os.sched_getaffinity(0))
    for name, rate in rates.items():
        print(
            json.dumps(
                {
                    "impl": name,
                    "docs_per_s": round(rate),
                    "docs": len(texts),
                    "mb": round(megabytes, 2),
                    "cpus": cpus,
                }
            )
        )
    for name in ("datasketch_bulk", "datatrove"):
        if name in rates:
            print(json.dumps({"ratio": f"strata / {name}", "value": round(rates["strata"] / rates[name], 2)}))


if __name__ == "__main__":
    main()
