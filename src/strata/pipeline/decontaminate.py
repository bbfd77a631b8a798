"""Decontamination: a kept document that shares a word n-gram (n = 13 by default) with an
evaluation set is dropped as `dropped_decontamination_<benchmark>`.

Words are runs of letters, digits and underscores of the lower-cased text (`\\w+`), so
punctuation and spacing never matter, as in GPT-3's 13-gram overlap test (Brown et al.
2020, appendix C) and Llama's decontamination. Each field of each benchmark record is one
text; a text of fewer than n words adds no n-gram (GPT-3 shortened n for those; here they
are not protected).

The benchmarks' n-grams are built once, on the driver, into a vocabulary (word → id ≥ 1)
and a sorted uint64 array of n-gram hashes (a polynomial over the word ids, mod 2^64), with
the benchmark of each; the stage object carries them to every worker. A document's words
become ids with one dict lookup each (words no benchmark uses are 0, and an n-gram holding
one is skipped), its n-grams hash in n vector operations and are looked up with
`np.searchsorted`. Memory per worker: 8 bytes per distinct benchmark n-gram (plus 2 for its
benchmark) and the vocabulary; a false match needs a 64-bit hash collision.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from strata.errors import SpecError
from strata.pipeline.documents import Batch, kept_mask
from strata.spec.cleaning import BenchmarkSpec, DecontaminationSpec

logger = logging.getLogger(__name__)
WORD = re.compile(r"\w+")
MULTIPLIER = np.uint64(0x100000001B3)  # the 64-bit FNV prime: odd, so every step is a bijection


def words(text: str) -> list[str]:
    """The lower-cased words of a text, punctuation and spacing dropped."""
    return WORD.findall(text.lower())


def ngram_hashes(ids: np.ndarray[Any, Any], n: int) -> np.ndarray[Any, Any]:
    """uint64 hash of every n-gram of a sequence of word ids (len - n + 1 of them); an n-gram
    holding id 0 (an unknown word) hashes to 0."""
    count = len(ids) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    ids = ids.astype(np.uint64)
    out = np.zeros(count, dtype=np.uint64)
    unknown = np.zeros(count, dtype=bool)
    with np.errstate(over="ignore"):
        for k in range(n):
            window = ids[k : k + count]
            out = out * MULTIPLIER + window
            unknown |= window == 0
    out[unknown] = 0
    return out


def _records(bench: BenchmarkSpec) -> list[dict[str, Any]]:
    path = Path(bench.path)
    opener = gzip.open if path.name.endswith(".gz") else open
    records = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line_no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise SpecError(
                    f"decontamination.benchmarks {bench.name}: {path}:{line_no} is not JSON ({error}); "
                    "give a JSONL file, one record a line"
                ) from error
            records.append(record)
    missing = [f for f in bench.fields if not any(f in r for r in records)]
    if missing:
        raise SpecError(
            f"decontamination.benchmarks {bench.name}: no record of {path} has the field(s) {missing}; "
            f"fields must name keys of its records (one has {sorted(records[0]) if records else 'none'})"
        )
    return records


class BenchmarkNgrams:
    """The n-grams of the job's benchmarks: vocabulary, sorted hashes, benchmark of each hash."""

    def __init__(self, spec: DecontaminationSpec) -> None:
        self.n = spec.ngram
        self.names = [b.name for b in spec.benchmarks]
        self.vocabulary: dict[str, int] = {}
        hashes, owners = [], []
        for index, bench in enumerate(spec.benchmarks):
            for record in _records(bench):
                for field in bench.fields:
                    value = record.get(field)
                    if isinstance(value, str):
                        ids = [self.vocabulary.setdefault(w, len(self.vocabulary) + 1) for w in words(value)]
                        found = ngram_hashes(np.asarray(ids, dtype=np.uint64), self.n)
                        hashes.append(found)
                        owners.append(np.full(len(found), index, dtype=np.uint16))
        merged = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.uint16)
        # The first benchmark listed owns an n-gram two of them share (a stable sort keeps it first).
        order = np.argsort(merged, kind="stable")
        merged, owner = merged[order], owner[order]
        first = np.ones(len(merged), dtype=bool)
        first[1:] = merged[1:] != merged[:-1]
        self.hashes, self.owner = merged[first], owner[first]
        logger.info(
            "decontamination: %d distinct %d-grams of %d benchmarks, %d words (%.1f MB)",
            len(self.hashes), self.n, len(self.names), len(self.vocabulary), self.hashes.nbytes / 1e6,
        )  # fmt: skip

    def match(self, text: str) -> str:
        """The benchmark the first matching n-gram of the text belongs to, or ""."""
        if len(self.hashes) == 0:
            return ""
        ids = np.fromiter((self.vocabulary.get(w, 0) for w in words(text)), dtype=np.uint64)
        found = ngram_hashes(ids, self.n)
        found = found[found != 0]
        if len(found) == 0:
            return ""
        at = np.minimum(np.searchsorted(self.hashes, found), len(self.hashes) - 1)
        hits = np.flatnonzero(self.hashes[at] == found)
        return self.names[int(self.owner[at[hits[0]]])] if len(hits) else ""


class Decontaminate:
    """Per-row stage: drop kept rows that share an n-gram with a benchmark."""

    def __init__(self, spec: DecontaminationSpec) -> None:
        self.ngrams = BenchmarkNgrams(spec)

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        texts = batch["text"]
        for i in np.flatnonzero(kept_mask(batch)):
            benchmark = self.ngrams.match(str(texts[i]))
            if benchmark:
                status[i] = f"dropped_decontamination_{benchmark}"
        batch["status"] = status
        return batch
