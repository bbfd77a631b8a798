"""The pipeline's report: documents and tokens kept after every stage (in all and per
language), drops by reason, dedup clusters, balancing and tokens written, as JSON and as
one figure. A kept document's tokens are the ids written to the shards (`kept_row_counts`);
a dropped document's are estimated from the UTF-8 bytes of its text as the stage saw it
(extracted text for HTML), at the bytes per token of the kept text of its language (of all
kept text for a language with none kept): tokenizing the dropped text, often several times
the kept text, took a quarter of a 40 MB run's CPU time (docs/benchmarks.md). A drop is
counted under the stage its row's `dropped_by` names (strata.pipeline.registry), whatever
its status says. The counts are summed on the workers (strata.pipeline.aggregate); the
driver sees one row per (stage, status, language)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strata.pipeline.aggregate import totals
from strata.pipeline.blockwise import Rows, numpy_batches
from strata.pipeline.documents import KEPT, Batch, dropped_table
from strata.pipeline.registry import STAGES
from strata.spec.pipeline import PipelineJob

NO_TOKENS = {"total_tokens": 0, "total_documents": 0, "tokens_by_language": {}, "tokens_by_source": {},
             "shards": [], "vocab_size": 0}  # fmt: skip


COUNT_KEYS = ["dropped_by", "status", "language"]
COUNT_VALUES = ["documents", "tokens", "bytes"]
UNKNOWN_LANGUAGE = "unknown"  # the count rows' language of a document without one


def _count_columns(batch: Batch, tokens: np.ndarray[Any, Any], text_bytes: np.ndarray[Any, Any]) -> Batch:
    """Each row's (dropped_by, status, language) key, one document, its tokens and bytes, for
    `totals` to add up per block on the workers."""
    language = np.array([str(lang) or UNKNOWN_LANGUAGE for lang in batch["language"]], dtype=object)
    return {
        "dropped_by": batch["dropped_by"].astype(str).astype(object),
        "status": batch["status"].astype(str).astype(object),
        "language": language,
        "documents": np.ones(len(language), dtype=np.int64),
        "tokens": tokens.astype(np.int64),
        "bytes": text_bytes.astype(np.int64),
    }


def _dropped_count_columns(table: pa.Table) -> pa.Table:
    """`_count_columns` of a table's dropped rows; their bytes are the UTF-8 bytes they shed
    (`dropped_bytes`: strata.pipeline.documents.shed_dropped_text) and any text they still
    hold, read from Arrow's string offsets (no text is converted); tokens 0 until
    `estimate_dropped_tokens`."""
    dropped = dropped_table(table)
    language = pc.fill_null(dropped["language"], "")
    text_bytes = pc.fill_null(pc.binary_length(dropped["text"]), 0).cast(pa.int64())
    if "dropped_bytes" in dropped.column_names:
        text_bytes = pc.add(text_bytes, dropped["dropped_bytes"])
    return pa.table(
        {
            "dropped_by": dropped["dropped_by"],
            "status": dropped["status"],
            "language": pc.if_else(pc.equal(language, ""), UNKNOWN_LANGUAGE, language),
            "documents": pa.array(np.ones(dropped.num_rows, dtype=np.int64)),
            "tokens": pa.array(np.zeros(dropped.num_rows, dtype=np.int64)),
            "bytes": text_bytes,
        }
    )


def dropped_row_counts(rows: Rows) -> list[dict[str, Any]]:
    """Documents and bytes per (dropped_by, status, language) of the rows not kept, in no
    particular order (`sorted_counts`)."""
    return totals(rows, COUNT_KEYS, COUNT_VALUES, prepare=_dropped_count_columns)


def _kept_count_columns(batch: Batch) -> Batch:
    """A numpy batch of tokenized kept rows → tokens from the shards' ids (less the end-of-text
    id each document ends with) and the bytes of their text."""
    n = len(batch["language"])
    keys = {"dropped_by": np.full(n, "", dtype=object), "status": np.full(n, KEPT, dtype=object)}
    tokens = np.array([len(tokens) - 1 for tokens in batch["tokens"]], dtype=np.int64)
    return _count_columns({**keys, "language": batch["language"]}, tokens, batch["text_bytes"])


def kept_row_counts(tokenized: Rows) -> list[dict[str, Any]]:
    """The count rows of the kept documents, from the tokens written to the shards, so that
    the kept text is not tokenized a second time for the stats."""
    return totals(tokenized, COUNT_KEYS, COUNT_VALUES, prepare=numpy_batches(_kept_count_columns))


def estimate_dropped_tokens(counts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """`counts` with each dropped row's tokens estimated from its bytes, and the bytes per
    token used: per language of the kept text, and `all` (for languages with nothing kept).
    Without kept tokens nothing is estimated (no tokenizer ran) and the rates are empty."""
    kept_bytes: Counter[str] = Counter()
    kept_tokens: Counter[str] = Counter()
    for c in counts:
        if c["status"] == KEPT:
            for key in (str(c["language"]), "all"):
                kept_bytes[key] += int(c["bytes"])
                kept_tokens[key] += int(c["tokens"])
    rates = {key: kept_bytes[key] / kept_tokens[key] for key in sorted(kept_tokens) if kept_tokens[key]}
    if "all" not in rates:
        return counts, {}
    estimated = [
        c
        if c["status"] == KEPT
        else {**c, "tokens": round(int(c["bytes"]) / rates.get(str(c["language"]), rates["all"]))}
        for c in counts
    ]
    return estimated, {key: round(rate, 3) for key, rate in rates.items()}


def sorted_counts(counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Count rows sorted by (dropped_by, status, language)."""
    return sorted(counts, key=lambda c: tuple(str(c[k]) for k in COUNT_KEYS))


def pipeline_stats(
    *,
    job: PipelineJob,
    counts: list[dict[str, Any]],
    manifest: dict[str, Any],
    reports: dict[str, dict[str, Any]],
    balance: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The JSON report of one run.

    `counts` (`kept_row_counts` + `dropped_row_counts`) holds, per `dropped_by` (the registry
    stage that dropped the rows, "" when kept), `status` and `language`, the number of
    `documents`, their `tokens` (dropped rows' are estimated here) and `bytes`; `reports` maps
    a stage to the figures it reported; `manifest` is the shard manifest (NO_TOKENS when
    nothing was written).
    """
    counts, bytes_per_token = estimate_dropped_tokens(counts)
    position = {stage.name: index for index, stage in enumerate(STAGES)} | {"": len(STAGES)}
    by_reason: Counter[str] = Counter()
    for c in counts:
        by_reason[str(c["status"])] += int(c["documents"])
    stages: dict[str, Any] = {}
    for index, stage in enumerate(STAGES):
        per_language: Counter[str] = Counter()
        tokens_per_language: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for c in counts:
            at = position[str(c["dropped_by"])]
            if at > index:
                per_language[str(c["language"]) or UNKNOWN_LANGUAGE] += int(c["documents"])
                tokens_per_language[str(c["language"]) or UNKNOWN_LANGUAGE] += int(c["tokens"])
            elif at == index:
                reasons[str(c["status"])] += int(c["documents"])
        stages[stage.name] = {
            "dropped": sum(reasons.values()),
            "kept": sum(per_language.values()),
            "kept_by_language": dict(sorted(per_language.items())),
            "tokens_kept": sum(tokens_per_language.values()),
            "tokens_kept_by_language": dict(sorted(tokens_per_language.items())),
            "dropped_by_reason": {stage.reason(r): n for r, n in sorted(reasons.items())},
            **reports.get(stage.name, {}),
        }
    kept = by_reason.pop(KEPT, 0)
    return {
        "job": job.name,
        "documents": {
            "total": kept + sum(by_reason.values()),
            "kept": kept,
            **dict(sorted(by_reason.items())),
        },
        "stages": stages,
        "balance": balance,
        "tokens": {
            # Tokens of dropped documents are their bytes over these (kept text per language).
            "dropped_estimated_at_bytes_per_token": bytes_per_token,
            "total": manifest["total_tokens"],
            "documents_written": manifest["total_documents"],
            "by_language": manifest["tokens_by_language"],
            "by_source": manifest["tokens_by_source"],
            "shards": len(manifest["shards"]),
            "vocab_size": manifest["vocab_size"],
        },
        "seconds": round(seconds, 2),
    }
