"""From the documents MinHash dedup keeps to token shards, on the Ray workers.

The driver receives aggregates only: token totals per group (for the balancing rates and the
shard count), one manifest record per shard, and the tokenizer's training sample, which is
bounded by `tokenizer.train_sample_bytes`.

Every written copy of a document gets an order key, the first 8 bytes of
BLAKE2b(seed, id, copy number) (the copy number counts rehydrated and balanced copies of one
document, 0, 1, ...). With n = ⌈tokens written / `shards.tokens_per_shard`⌉ shards (at most
one per copy), a copy goes to shard key mod n and a shard holds its copies sorted by
(key, input order, copy number): the shuffle needs no global sort, depends on nothing but
the job's seed and the documents, and gives byte-identical shards for any number of workers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import ray

from strata.pipeline.aggregate import sums, totals
from strata.pipeline.balance import (
    copies,
    group_key,
    hash_fraction,
    order_key,
    rehydrated_copies,
    sampling_rates,
)
from strata.pipeline.blockwise import Blocks, Rows, blocks_of, count_rows, map_blocks, numpy_batches, selected
from strata.pipeline.documents import Batch, utf8_bytes
from strata.pipeline.exchange import dataset, map_groups, partitions
from strata.pipeline.tokenize import Tokenize
from strata.shards import TokenizedDocument, token_dtype, write_manifest, write_shard
from strata.spec.pipeline import PipelineJob
from strata.spec.tokenizer import TokenizerFile
from strata.storage import Location

logger = logging.getLogger(__name__)
TOKENIZED_COLUMNS = ["id", "order", "language", "source", "cluster_size", "tokens", "text_bytes"]
RECORD_DICTS = ("tokens_by_language", "tokens_by_source")


def tokenizer_sample(kept: Rows, sample_bytes: int, seed: int) -> Iterator[str]:
    """Kept texts for training the tokenizer, in dataset order: every text when they total at
    most `sample_bytes` of UTF-8, else the texts whose hash of (seed, id) falls under
    sample_bytes / total, cut off at `sample_bytes`. Streamed, one batch at a time."""
    blocks = blocks_of(kept)
    total = sums(blocks, ["text_bytes"], prepare=numpy_batches(_text_bytes))["text_bytes"]
    fraction = min(1.0, sample_bytes / max(total, 1))
    sample = dataset(blocks).select_columns(["id", "text"])
    if fraction < 1.0:
        sample = sample.filter(lambda row: hash_fraction(seed, str(row["id"])) < fraction)
    logger.info("tokenizer sample: %.3f of %d bytes of kept text", fraction, total)
    taken = 0
    for batch in sample.iter_batches(batch_format="numpy", batch_size=1024):
        for text in batch["text"]:
            taken += len(str(text).encode("utf-8"))
            if taken > sample_bytes:
                return
            yield str(text)


def _text_bytes(batch: Batch) -> Batch:
    return {"text_bytes": utf8_bytes(batch["text"])}


def tokenize(kept: Rows, tokenizer_path: Location, tokenizer: TokenizerFile) -> Blocks:
    """Kept rows with `tokens` (ids of the shards' dtype), only the columns the shards need,
    held in Ray's object store (the tasks may still be running when this returns)."""
    encode = Tokenize(str(tokenizer_path), eot_id=tokenizer.eos_id, dtype=token_dtype(tokenizer.vocab_size))
    return map_blocks(blocks_of(kept), numpy_batches(encode), selected(TOKENIZED_COLUMNS)).blocks


@dataclass(frozen=True, slots=True, kw_only=True)
class Copies:
    """A numpy batch function: one row per written copy of each document, with its order key,
    group and token count. Rehydration repeats a document by its cluster size (FineWeb-2);
    balancing by its group's rate (`rates`, none: no balancing), each rehydrated copy drawing
    on its own."""

    seed: int
    by: tuple[str, ...]
    rehydrate: dict[int, int] = field(default_factory=dict)
    rates: dict[str, float] | None = None

    def __call__(self, batch: Batch) -> Batch:
        rows: dict[str, list[Any]] = {c: [] for c in ("key", "order", "copy", "group", "n_tokens", "index")}
        for i, (doc_id, size, lang, src, tokens) in enumerate(
            zip(
                batch["id"],
                batch["cluster_size"],
                batch["language"],
                batch["source"],
                batch["tokens"],
                strict=True,
            )
        ):
            group = group_key(str(lang), str(src), self.by)
            written = 0
            for copy_no in range(rehydrated_copies(int(size), self.rehydrate) if self.rehydrate else 1):
                draw_key = f"{doc_id}\0{copy_no}" if self.rehydrate else str(doc_id)
                repeats = 1 if self.rates is None else copies(draw_key, self.rates.get(group, 0.0), self.seed)
                for _ in range(repeats):
                    rows["key"].append(order_key(self.seed, f"{doc_id}\0{written}"))
                    rows["copy"].append(written)
                    rows["order"].append(int(batch["order"][i]))
                    rows["group"].append(group)
                    rows["n_tokens"].append(len(tokens))
                    rows["index"].append(i)
                    written += 1
        index = np.asarray(rows.pop("index"), dtype=np.int64)
        out: Batch = {
            "key": np.asarray(rows["key"], dtype=np.uint64),
            "order": np.asarray(rows["order"], dtype=np.int64),
            "copy": np.asarray(rows["copy"], dtype=np.int64),
            "group": np.asarray(rows["group"], dtype=object),
            "n_tokens": np.asarray(rows["n_tokens"], dtype=np.int64),
            "documents": np.ones(len(index), dtype=np.int64),
        }
        for column in ("language", "source", "tokens"):
            out[column] = batch[column][index] if len(index) else np.empty(0, dtype=object)
        return out


def _group_tokens(tokenized: Blocks, copies: Copies) -> dict[str, tuple[int, int]]:
    """Group → (tokens, documents) of the `copies` of the tokenized rows, summed on the cluster."""
    return {
        str(row["group"]): (int(row["n_tokens"]), int(row["documents"]))
        for row in totals(tokenized, ["group"], ["n_tokens", "documents"], prepare=numpy_batches(copies))
    }


@dataclass(frozen=True, slots=True)
class AssignShard:
    """A numpy batch function: the rows' `copies`, each with `shard` = its order key mod the
    shard count."""

    copies: Copies
    shards: int

    def __call__(self, batch: Batch) -> Batch:
        batch = self.copies(batch)
        batch["shard"] = (batch["key"] % np.uint64(self.shards)).astype(np.int64)
        return batch


def write_shard_group(group: Batch, out_dir: str, dtype: str) -> Batch:
    """map_groups: write one shard's copies, sorted by (key, order, copy); return its record."""
    position = np.lexsort((group["copy"], group["order"], group["key"]))
    docs = [
        TokenizedDocument(
            np.asarray(group["tokens"][i]),
            str(group["language"][i]),
            str(group["source"][i]),
        )
        for i in position
    ]
    record = write_shard(Location(out_dir), int(group["shard"][0]), docs, dtype)
    for name in RECORD_DICTS:  # Arrow columns need one type: the dicts travel as JSON
        record[name] = json.dumps(record[name])
    return {k: np.array([v]) for k, v in record.items()}


def write_balanced_shards(
    job: PipelineJob, tokenized: Rows, *, out_dir: Location, tokenizer: TokenizerFile
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Rehydrate, balance and shard the tokenized documents on the workers (each writes its
    shards to `out_dir`, local or object storage, itself); write the manifest (uint16 or int32
    ids by the tokenizer's vocabulary, strata.shards.token_dtype).

    Returns the manifest, the rehydration report and the balance report (empty when off).
    """
    rehydrate = dict(job.dedup.minhash.rehydrate)
    by = tuple(job.balance.by)
    blocks = blocks_of(tokenized)
    copies = Copies(seed=job.seed, by=by, rehydrate=rehydrate)
    before = _group_tokens(blocks, copies)
    rehydration: dict[str, Any] = {}
    if rehydrate:
        documents_before = count_rows(blocks)
        after_rehydration = sum(d for _, d in before.values())
        rehydration = {"documents_before": documents_before, "documents_after": after_rehydration}
        logger.info("rehydrated %d documents into %d", documents_before, after_rehydration)
    balance: dict[str, Any] = {}
    after = before
    if job.balance.enabled:
        rates = sampling_rates({g: t for g, (t, _) in before.items()}, job.balance)
        copies = Copies(seed=job.seed, by=by, rehydrate=rehydrate, rates=rates)
        after = _group_tokens(blocks, copies)
        balance = {
            "alpha": job.balance.alpha,
            "token_budget": job.balance.token_budget,
            "groups": {
                g: {
                    "tokens_before": t,
                    "rate": round(rates.get(g, 0.0), 6),
                    "tokens_after": after.get(g, (0, 0))[0],
                }
                for g, (t, _) in sorted(before.items())
            },
        }
    tokens = sum(t for t, _ in after.values())
    documents = sum(d for _, d in after.values())
    shards = max(1, min(documents, -(-tokens // job.shards.tokens_per_shard)))
    written_shards = map_groups(
        blocks,
        "shard",
        partial(write_shard_group, out_dir=str(out_dir), dtype=token_dtype(tokenizer.vocab_size)),
        partitions(),
        prepare=AssignShard(copies, shards),
    )
    records = [row for table in ray.get(written_shards) for row in table.to_pylist()]  # one per shard
    manifest = write_manifest(
        out_dir,
        _numbered(out_dir, records),
        seed=job.seed,
        vocab_size=tokenizer.vocab_size,
        eot_id=tokenizer.eos_id,
        tokenizer={"sha256": tokenizer.sha256, "eos_token": tokenizer.eos_token, "path": job.tokenizer.path},
    )
    logger.info("wrote %d documents, %d tokens in %d shards", documents, tokens, len(manifest["shards"]))
    return manifest, rehydration, balance


def _numbered(out_dir: Location, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in shard order, renamed 0, 1, ... when a shard number drew no document."""
    ordered = sorted(records, key=lambda r: str(r["bin"]))
    out = []
    for index, raw in enumerate(ordered):
        record = {k: v.item() if isinstance(v, np.generic) else v for k, v in raw.items()}
        for name in RECORD_DICTS:
            record[name] = json.loads(record[name])
        for kind in ("bin", "idx"):
            wanted = f"shard_{index:05d}.{kind}"
            if record[kind] != wanted:
                (out_dir / record[kind]).rename(out_dir / wanted)
                record[kind] = wanted
        out.append(record)
    return out
