"""Strata's pipeline against datatrove's on the same corpus, in one run: each quality rule's
drops, document by document, and MB/s per core end to end.

Usage:
    .venv/bin/python benchmarks/datatrove_compare.py --datatrove-python /tmp/dtvenv/bin/python \
        [--corpus man | FILE.jsonl] [--every 2] [--files 8] [--cpus 1 2] [--skip-throughput]

Corpus: by default this machine's English manual pages (benchmarks/near_duplicates.py's text),
every `--every`-th page (2: 40.8 MB of 9,974 pages), written as `--files` files of about one
size for the throughput runs (a crawl's shape; Strata's per-document stages run one task per
file). datatrove is not a Strata dependency: give the Python of a separate virtual
environment that has it (docs/benchmarks.md has the commands).

1. Rules. Every document goes through each rule set alone (Gopher repetition, Gopher quality,
   C4, FineWeb, published thresholds on both sides); the first rule that drops it is counted.
   Printed per rule set: documents kept by each side, the relative difference, and how many
   documents the two sides judge differently; per rule: drops on each side.
2. Throughput. datatrove: its four filters, MinHash in its four steps (14 buckets × 8 hashes,
   5-grams) and `DocumentTokenizer`, one task on one core. Strata: `run_pipeline` with the same
   stages (language ID, exact dedup, PII, decontamination and balancing off), MinHash 14 × 8,
   the same tokenizer file (`tokenizer.path`), on a fresh local Ray of `--cpus` CPUs. The
   tokenizer is a 32k BPE trained once on a 4 MB sample, before any timing. Both sides run
   with RAYON_NUM_THREADS=1: Hugging Face tokenizers' `encode_batch` otherwise spreads over
   every core of the machine, whatever CPUs the run was given.
3. With 1 and 2 CPUs in `--cpus`: Strata's speedup from 1 to 2 CPUs, beside this machine's
   own bound on it, the speedup of Strata's per-document chain (no Ray) run as two processes
   on half the files each against one process on all (`two_process_speedup`).
Prints one JSON line per result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.spec.quality import C4Spec, FineWebSpec, GopherQualitySpec, GopherRepetitionSpec

DATATROVE_RULES = """
import json, sys
from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
filters = {"gopher_repetition": GopherRepetitionFilter(), "gopher": GopherQualityFilter(),
           "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter()}
reasons = {name: [] for name in filters}
for line in open(sys.argv[1], encoding="utf-8"):
    text = json.loads(line)["text"]
    for name, f in filters.items():
        verdict = f.filter(Document(text=text, id=""))
        reasons[name].append("" if verdict is True else verdict[1])
json.dump(reasons, open(sys.argv[2], "w"))
"""
DATATROVE_PIPELINE = """
import sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                      MinhashDedupSignature)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer
from datatrove.pipeline.writers import JsonlWriter
corpus, tokenizer, work = sys.argv[1], sys.argv[2], sys.argv[3]
config = MinhashConfig()
def run(steps, tasks=1):
    LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{time.monotonic_ns()}").run()
start = time.perf_counter()
run([JsonlReader(corpus), GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
     FineWebQualityFilter(), JsonlWriter(f"{work}/filtered")])
run([JsonlReader(f"{work}/filtered"), MinhashDedupSignature(f"{work}/signatures", config=config)])
run([MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=config)], tasks=config.num_buckets)
run([MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=config)])
run([JsonlReader(f"{work}/filtered"), MinhashDedupFilter(f"{work}/remove_ids"),
     DocumentTokenizer(f"{work}/tokens", tokenizer_name_or_path=tokenizer, eos_token="<|endoftext|>")])
print(time.perf_counter() - start)
"""
STRATA_JOB = """
import json, sys, tempfile, time
from strata.spec.pipeline import PipelineJob
corpus, tokenizer, cpus, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
off = {"enabled": False}
job = PipelineJob.model_validate({"kind": "pipeline", "name": "datatrove-compare", "input": {"paths": [corpus]},
    "url_filter": off, "extract": off, "language": off, "decontamination": off, "pii": off, "balance": off,
    "quality": {"c4": {"enabled": True}, "fineweb": {"enabled": True}},
    "dedup": {"exact": off, "minhash": {"bands": 14, "rows": 8}},
    "tokenizer": {"path": tokenizer}, "output": {"dir": out}})
"""
STRATA_PIPELINE = (
    STRATA_JOB
    + """
import ray
from strata.pipeline.run import run_pipeline
ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
         _temp_dir=tempfile.mkdtemp(prefix="sd-", dir="/tmp"), logging_level="WARNING")
ray.data.DataContext.get_current().enable_progress_bars = False
start = time.perf_counter()
stats = run_pipeline(job)
print(json.dumps({"seconds": time.perf_counter() - start, "kept": stats["documents"]["kept"]}))
ray.shutdown()
"""
)
# The per-document chain of the same job, in this one process, without Ray (the work of the
# groups' tasks), on every `step`-th file from `first`, started at the epoch second `start`;
# prints the seconds from `start` to its end.
STRATA_CHAIN = (
    STRATA_JOB
    + """
from pathlib import Path
from strata.pipeline.groups import DocumentChain
first, step, start = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
chain = DocumentChain(job)
files = [str(f) for f in sorted(Path(corpus).iterdir())][first::step]
time.sleep(max(0.0, start - time.time()))
for index, path in enumerate(files):
    for _ in chain.tables([(index, path)], {}):
        pass
print(time.time() - start)
"""
)
# Strata's reason for each of datatrove's, where the names differ.
SAME_REASON = {
    "gopher_short_doc": "too_few_words",
    "gopher_long_doc": "too_many_words",
    "gopher_below_avg_threshold": "mean_word_length",
    "gopher_above_avg_threshold": "mean_word_length",
    "gopher_too_many_hashes": "hash_ratio",
    "gopher_too_many_ellipsis": "ellipsis_ratio",
    "gopher_too_many_bullets": "bullet_lines",
    "gopher_too_many_end_ellipsis": "ellipsis_lines",
    "gopher_below_alpha_threshold": "alpha_words",
    "gopher_enough_stop_words": "stop_words",
    "char_dup_ratio": "dup_line_char_ratio",
    "list_ratio": "newline_ratio",
    **{f"top_{n}_gram": f"top_{n}gram" for n in (2, 3, 4)},
    **{f"duplicated_{n}_n_grams": f"dup_{n}gram" for n in range(5, 11)},
}


def strata_reasons(texts: list[str]) -> dict[str, list[str]]:
    filters = {
        "gopher_repetition": GopherRepetition(GopherRepetitionSpec()),
        "gopher": GopherQuality(GopherQualitySpec()),
        "c4": C4Quality(C4Spec(enabled=True)),
        "fineweb": FineWebQuality(FineWebSpec(enabled=True)),
    }
    reasons: dict[str, list[str]] = {name: [] for name in filters}
    for text in texts:
        for name, f in filters.items():
            ok, reason = f.keep(f.rewrite(text))
            reasons[name].append("" if ok else reason)
    return reasons


def compare_rules(corpus: Path, texts: list[str], datatrove_python: str, work: Path) -> None:
    subprocess.run([datatrove_python, "-c", DATATROVE_RULES, str(corpus), str(work / "dt.json")], check=True)
    theirs = json.loads((work / "dt.json").read_text())
    start = time.perf_counter()
    ours = strata_reasons(texts)
    print(
        json.dumps({"strata_rules_seconds": round(time.perf_counter() - start, 1), "documents": len(texts)})
    )
    for name, reasons in ours.items():
        dt = [SAME_REASON.get(r, r) for r in theirs[name]]
        mine = ["too_few_sentences" if r == "no_lines_left" else r for r in reasons]  # datatrove: 0 sentences
        kept_dt, kept_me = dt.count(""), mine.count("")
        by_reason = {r: [dt.count(r), mine.count(r)] for r in sorted(set(dt + mine) - {""})}
        print(
            json.dumps(
                {
                    "rules": name,
                    "kept_datatrove": kept_dt,
                    "kept_strata": kept_me,
                    "kept_difference": round((kept_me - kept_dt) / max(kept_dt, 1), 4),
                    "documents_judged_differently": sum(
                        (a == "") != (b == "") for a, b in zip(dt, mine, strict=True)
                    ),
                    "drops_datatrove_strata": by_reason,
                }
            )
        )


def _last_line(what: str, command: list[str]) -> str:
    """The last line a pipeline run prints, its tokenizers on one thread; exits with its
    error output when it fails."""
    run = subprocess.run(
        command, capture_output=True, text=True, check=False, env={**os.environ, "RAYON_NUM_THREADS": "1"}
    )
    if run.returncode:
        sys.exit(f"{what}'s pipeline failed: {run.stderr[-3000:]}")
    return run.stdout.strip().splitlines()[-1]


def two_process_speedup(corpus: Path, tokenizer: Path, work: Path) -> float:
    """How much sooner two processes, each on half the files, finish Strata's per-document
    chain over the corpus than one process on all of them: this machine's own bound on the
    1 → 2 CPU speedup of that chain, which is most of the pipeline's work (two vCPUs may share
    one core's caches, or a host with other work)."""

    def run(step: int) -> float:
        start = time.time() + 10  # the processes have loaded Strata and the job by then
        command = [sys.executable, "-c", STRATA_CHAIN, str(corpus), str(tokenizer), "1", str(work / "chain")]
        env = {**os.environ, "RAYON_NUM_THREADS": "1"}
        procs = [
            subprocess.Popen(
                [*command, str(k), str(step), str(start)], stdout=subprocess.PIPE, text=True, env=env
            )
            for k in range(step)
        ]
        return max(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)

    return run(1) / run(2)


def throughput(texts: list[str], args: argparse.Namespace, work: Path) -> None:
    from strata.pipeline.tokenize import train_tokenizer
    from strata.spec.tokenizer import TokenizerSpec

    tokenizer = work / "tokenizer.json"
    sample, size = [], 0
    for text in texts:
        sample.append(text)
        size += len(text.encode())
        if size > 4_000_000:
            break
    train_tokenizer(sample, TokenizerSpec(vocab_size=32_000), tokenizer)
    corpus = work / "files"
    corpus.mkdir()
    lines = (work / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    for k in range(args.files):
        (corpus / f"part-{k:03d}.jsonl").write_text("".join(lines[k :: args.files]), encoding="utf-8")
    mb = sum(f.stat().st_size for f in corpus.iterdir()) / 1e6
    dt_out = _last_line(
        "datatrove",
        [args.datatrove_python, "-c", DATATROVE_PIPELINE, str(corpus), str(tokenizer), str(work / "dt")],
    )
    dt_seconds = float(dt_out)
    print(json.dumps({"system": "datatrove", "cpus": 1, "seconds": round(dt_seconds, 1),
                      "mb_per_s_per_core": round(mb / dt_seconds, 4)}))  # fmt: skip
    seconds: dict[int, float] = {}
    for cpus in args.cpus:
        command = [
            sys.executable,
            "-c",
            STRATA_PIPELINE,
            str(corpus),
            str(tokenizer),
            str(cpus),
            str(work / f"s{cpus}"),
        ]
        result = json.loads(_last_line("Strata", command))
        seconds[cpus] = result["seconds"]
        per_core = mb / result["seconds"] / cpus
        print(json.dumps({"system": "strata", "cpus": cpus, "seconds": round(result["seconds"], 1),
                          "kept": result["kept"], "mb_per_s_per_core": round(per_core, 4),
                          "per_core_vs_datatrove": round(per_core / (mb / dt_seconds), 2)}))  # fmt: skip
    if {1, 2} <= set(seconds):
        bound = two_process_speedup(corpus, tokenizer, work)
        speedup = seconds[1] / seconds[2]
        print(json.dumps({"strata_1_to_2_cpus": round(speedup, 2), "chain_two_processes": round(bound, 2),
                          "of_two_processes": round(speedup / bound, 2)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datatrove-python", required=True)
    parser.add_argument("--corpus", default="man", help="man, or a JSONL file with id and text")
    parser.add_argument("--every", type=int, default=2, help="keep every n-th document")
    parser.add_argument("--files", type=int, default=8, help="files the corpus is cut into for throughput")
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-vs-datatrove-") as tmp:
        work = Path(tmp)
        if args.corpus == "man":
            from near_duplicates import load_corpus  # the sibling script (this folder is on sys.path)

            docs = [{"id": f"man-{n}", "text": t} for n, t in enumerate(load_corpus("man"))]
        else:
            docs = [json.loads(line) for line in Path(args.corpus).read_text(encoding="utf-8").splitlines()]
        docs = docs[:: args.every]
        corpus = work / "corpus.jsonl"
        corpus.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
        texts = [d["text"] for d in docs]
        print(json.dumps({"corpus_mb": round(corpus.stat().st_size / 1e6, 1), "documents": len(texts)}))
        compare_rules(corpus, texts, args.datatrove_python, work)
        if not args.skip_throughput:
            throughput(texts, args, work)


if __name__ == "__main__":
    main()
