"""Peak memory of the pipeline's driver and Ray workers as the corpus grows.

Builds 1×, 4×, 16× ... copies of a real corpus (default: the demo corpus, 3.7 MB of
English web and documentation text, data/demo/SOURCE.md; `--corpus man`: the 75 MB of
this machine's English manual pages), one file per copy; copy c > 0 of each document has
every 7th word (from word c on) replaced by another word of the same document, chosen
deterministically, and its id suffixed, so that neither exact nor MinHash dedup removes the
copies (two copies share few 5-word shingles). Each scale runs the same job (every default
stage, MinHash dedup, a 4,096-token BPE trained on a 2 MB sample (`--train-sample-bytes`:
the driver trains it, so a sample that grew with the corpus would grow the driver up to
`tokenizer.train_sample_bytes`, 100 MB by default), 250,000-token shards) in a fresh process on a
fresh local Ray with `--cpus` CPUs, and samples every 0.2 s the resident set size of the
driver (its own peak from getrusage as well) and of each Ray worker process (`ray::` in
its command line, among the driver's descendants): the resident set, which counts the
pages of Ray's shared-memory object store a worker has read, and the private part alone
(RssAnon of /proc/PID/status).

Usage: .venv/bin/python benchmarks/pipeline_memory.py [--scales 1 4 16] [--cpus 2] [--train-sample-bytes N]
       [--corpus data/demo/corpus.jsonl | man] [--every 2]
Prints one JSON line per scale, then the driver's peak at the largest scale over its peak at 1×.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ONE_RUN = """
import json, resource, sys, tempfile, threading, time
import psutil, ray
from strata.pipeline.run import run_pipeline
from strata.spec.pipeline import PipelineJob
corpus, cpus, out, sample = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
job = PipelineJob.model_validate({"kind": "pipeline", "name": "memory", "input": {"paths": [corpus]},
    "tokenizer": {"vocab_size": 4096, "train_sample_bytes": sample}, "shards": {"tokens_per_shard": 250000},
    "output": {"dir": out}})
me = psutil.Process()
peaks = {"driver": 0, "workers": {}, "private": {}}
done = threading.Event()
def anonymous(pid):
    # RssAnon: the process's own memory, without the object store's shared pages it has read
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0
def sample():
    while not done.is_set():
        peaks["driver"] = max(peaks["driver"], me.memory_info().rss)
        for p in me.children(recursive=True):
            try:
                if "ray::" in " ".join(p.cmdline()[:1]):
                    peaks["workers"][p.pid] = max(peaks["workers"].get(p.pid, 0), p.memory_info().rss)
                    peaks["private"][p.pid] = max(peaks["private"].get(p.pid, 0), anonymous(p.pid))
            except (psutil.Error, OSError):
                pass
        time.sleep(0.2)
ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
         _temp_dir=tempfile.mkdtemp(prefix="sm-", dir="/tmp"), logging_level="WARNING")
ray.data.DataContext.get_current().enable_progress_bars = False
thread = threading.Thread(target=sample, daemon=True)
thread.start()
start = time.perf_counter()
stats = run_pipeline(job)
seconds = time.perf_counter() - start
done.set()
thread.join()
ray.shutdown()
mib = 2**20
workers = sorted(peaks["workers"].values())
print(json.dumps({"driver_peak_mib": round(max(peaks["driver"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / mib, 1),
    "worker_peak_mib": round(workers[-1] / mib, 1) if workers else 0,
    "worker_median_peak_mib": round(workers[len(workers) // 2] / mib, 1) if workers else 0,
    "worker_private_peak_mib": round(max(peaks["private"].values(), default=0) / mib, 1),
    "workers": len(workers), "documents": stats["documents"]["total"], "kept": stats["documents"]["kept"],
    "tokens": stats["tokens"]["total"], "shards": stats["tokens"]["shards"], "seconds": round(seconds, 1)}))
"""


def perturbed(text: str, copy: int) -> str:
    """Every 7th word from word `copy` on replaced by another word of the text (copy 0: as is)."""
    if copy == 0:
        return text
    words = text.split(" ")
    for i in range(copy % 7, len(words), 7):
        words[i] = words[(i * 31 + copy) % len(words)]
    return " ".join(words)


def build_corpus(source: Path, scale: int, out: Path) -> int:
    """Write `scale` perturbed copies of `source` (JSONL with id and text) into the folder
    `out`, one file each (a crawl's shape: more files of one size, not larger files);
    return their bytes."""
    lines = source.read_text(encoding="utf-8").splitlines()
    out.mkdir(parents=True)
    for copy in range(scale):
        with (out / f"part-{copy:03d}.jsonl").open("w", encoding="utf-8") as f:
            for line in lines:
                doc = json.loads(line)
                doc["id"] = f"{doc['id']}~{copy}"
                doc["text"] = perturbed(doc["text"], copy)
                f.write(json.dumps(doc) + "\n")
    return sum(f.stat().st_size for f in out.iterdir())


def man_corpus(out: Path, every: int) -> Path:
    """Every `every`-th English manual page of this machine as JSONL (benchmarks/
    near_duplicates.py's text: roff requests dropped, escapes removed), written once to `out`."""
    from near_duplicates import load_corpus  # the sibling script (this folder is on sys.path)

    with out.open("w", encoding="utf-8") as f:
        for n, text in enumerate(load_corpus("man")[::every]):
            f.write(json.dumps({"id": f"man-{n}", "text": text}) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--corpus", default="data/demo/corpus.jsonl", help="a JSONL file, or man")
    parser.add_argument(
        "--every", type=int, default=1, help="with --corpus man: every n-th page (2: 40.8 MB)"
    )
    parser.add_argument(
        "--train-sample-bytes",
        type=int,
        default=2_000_000,
        help="tokenizer.train_sample_bytes: below the kept text at 1x, so every scale trains on as much",
    )
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="strata-memory-") as tmp:
        source = (
            man_corpus(Path(tmp) / "man.jsonl", args.every) if args.corpus == "man" else Path(args.corpus)
        )
        for scale in args.scales:
            corpus = Path(tmp) / f"corpus-{scale}x"
            size = build_corpus(source, scale, corpus)
            run = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    ONE_RUN,
                    str(corpus),
                    str(args.cpus),
                    str(Path(tmp) / f"out-{scale}x"),
                    str(args.train_sample_bytes),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = {
                "scale": scale,
                "corpus_mb": round(size / 1e6, 1),
                **json.loads(run.stdout.splitlines()[-1]),
            }
            results[scale] = result
            print(json.dumps(result), flush=True)
    low, high = min(results), max(results)
    ratio = results[high]["driver_peak_mib"] / results[low]["driver_peak_mib"]
    print(f"driver peak {high}x / {low}x: {ratio:.2f}")


if __name__ == "__main__":
    main()
