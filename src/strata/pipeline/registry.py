"""The document stages in pipeline order, one row each: the runner runs them in this order,
the stats count drops by them and resume fingerprints its checkpoints by them.

A row names the stage (its key in `stats/pipeline.json`), the job section that configures
it (dotted, e.g. `quality.gopher`; a section with `enabled: false` skips the stage), the
status prefix of the rows it drops (stripped to name the reason in the stats), how it runs
and the resume checkpoint written after it (its fingerprint covers the sections of every
stage up to it: strata.pipeline.resume). After a stage runs, each row it dropped records
the stage in `dropped_by`, so the stats count drops by stage exactly, never by matching
status prefixes (`dropped_gopher_` starts `dropped_gopher_repetition_`).

The leading stages judge each row alone (DOCUMENT_STAGES: read, then stages with
`per_row`, a class built from the job section whose instances map a batch of rows);
strata.pipeline.groups runs them as one chain in one task per group of input files. The
later stages (`apply`) act on all rows at once, as their blocks in Ray's object store: they
group rows across files (exact, MinHash and semantic dedup) or report across them.

Adding a stage is one module (a `Filter` subclass for a quality rule set, with its section
in `QualitySpec`), one row here and its test. A per-row stage reports counts through
columns it adds (`counts`: column → report key; summed over all rows, then dropped); an
`apply` stage that rewrites text instead of dropping rows (PII) reports what it changed
through its apply function's report. Tokenizing, rehydration, balancing and sharding act on
the documents these stages keep and are not rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from strata.pipeline.blockwise import Blocks
from strata.pipeline.classifier import QualityClassifier
from strata.pipeline.decontaminate import Decontaminate
from strata.pipeline.dedup.exact import exact_duplicates
from strata.pipeline.dedup.near import MINHASH_DROP, near_duplicates
from strata.pipeline.dedup.near import empty_report as empty_near_report
from strata.pipeline.dedup.semantic import SEMANTIC_DROP, semantic_duplicates
from strata.pipeline.dedup.semantic import empty_report as empty_semantic_report
from strata.pipeline.documents import KEPT, Batch
from strata.pipeline.exchange import partitions
from strata.pipeline.extract import ExtractMainText
from strata.pipeline.filters.base import Filter
from strata.pipeline.filters.c4 import C4Quality
from strata.pipeline.filters.fineweb import FineWebQuality
from strata.pipeline.filters.gopher_quality import GopherQuality
from strata.pipeline.filters.gopher_repetition import GopherRepetition
from strata.pipeline.language import IdentifyLanguage
from strata.pipeline.pii import replace_pii
from strata.pipeline.toxicity import ToxicityScore
from strata.pipeline.urls import NO_URL, FilterUrls
from strata.spec.cleaning import PiiSpec
from strata.spec.dedup import ExactDedupSpec, MinhashSpec, SemanticDedupSpec
from strata.spec.pipeline import PipelineJob
from strata.storage import Location

# (the rows' blocks, the stage's job section, output.dir) → (the rows' blocks, the stage's report
# for stats/pipeline.json); blocks are Arrow tables in Ray's object store, empty ones allowed
Apply = Callable[[Blocks, Any, Location], tuple[Blocks, dict[str, Any]]]
RowStage = Callable[[Batch], Batch]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One document stage."""

    name: str
    section: str
    drops: str
    per_row: Callable[[Any], RowStage] | None = None
    counts: Mapping[str, str] = field(default_factory=dict)
    apply: Apply | None = None
    checkpoint: str = ""
    report_when_off: Mapping[str, Any] = field(default_factory=dict)

    def spec(self, job: PipelineJob) -> Any:
        """The job section that configures the stage."""
        value: Any = job
        for key in self.section.split("."):
            value = getattr(value, key)
        return value

    def enabled(self, job: PipelineJob) -> bool:
        """Whether the job runs the stage (a section without `enabled` always runs)."""
        return bool(getattr(self.spec(job), "enabled", True))

    def reason(self, status: str) -> str:
        """A dropped row's reason as the stats name it: its status less the prefix, else the stage."""
        return status.removeprefix(self.drops) or self.name


# Columns a later stage may read whether or not the stage that sets them runs (a score stays NaN
# on rows its stage did not score).
ROW_DEFAULTS: dict[str, tuple[Any, Any]] = {  # column: (value, dtype)
    "language": ("", object),
    "duplicate_of": ("", object),
    "cluster_size": (1, np.int64),
    "dropped_by": ("", object),
    "dropped_bytes": (0, np.int64),
    "quality_score": (np.nan, np.float64),
    "toxicity_score": (np.nan, np.float64),
}


def with_defaults(batch: Batch) -> Batch:
    """The batch with every column of ROW_DEFAULTS at its default value."""
    n = len(batch["status"])
    return {**batch, **{c: np.full(n, v, dtype) for c, (v, dtype) in ROW_DEFAULTS.items()}}


def _recorded(
    status: np.ndarray[Any, Any], dropped_by: np.ndarray[Any, Any], stage: str
) -> np.ndarray[Any, Any]:
    """`dropped_by` with `stage` named on every row dropped since the last stage."""
    recorded = dropped_by.astype(object)
    recorded[(status != KEPT) & (recorded == "")] = stage
    return recorded


def record_drops(stage: str) -> Callable[[Batch], Batch]:
    """A numpy batch function: name `stage` in `dropped_by` of every row dropped since the last stage."""

    def record(batch: Batch) -> Batch:
        batch["dropped_by"] = _recorded(batch["status"], batch["dropped_by"], stage)
        return batch

    return record


def record_drops_in_table(stage: str) -> Callable[[pa.Table], pa.Table]:
    """`record_drops` for map_batches(batch_format="pyarrow"): the other columns (text
    included) stay in Arrow, unconverted."""

    def record(table: pa.Table) -> pa.Table:
        status, dropped_by = (table[c].to_numpy(zero_copy_only=False) for c in ("status", "dropped_by"))
        recorded = pa.array(_recorded(status, dropped_by, stage), type=pa.string())
        return table.set_column(table.schema.get_field_index("dropped_by"), "dropped_by", recorded)

    return record


def _exact(rows: Blocks, spec: ExactDedupSpec, out: Location) -> tuple[Blocks, dict[str, Any]]:
    return exact_duplicates(rows, partitions()), {}


def _near(rows: Blocks, spec: MinhashSpec, out: Location) -> tuple[Blocks, dict[str, Any]]:
    return near_duplicates(rows, spec, partitions())


def _semantic(rows: Blocks, spec: SemanticDedupSpec, out: Location) -> tuple[Blocks, dict[str, Any]]:
    return semantic_duplicates(rows, spec, partitions(), out / "semantic" / "centroids.npy")


def _pii(rows: Blocks, spec: PiiSpec, out: Location) -> tuple[Blocks, dict[str, Any]]:
    return replace_pii(rows, spec)


def filter_stage(rules: type[Filter]) -> Stage:
    """A quality rule set: its name is its `QualitySpec` field and its drop prefix."""
    return Stage(
        name=rules.name,
        section=f"quality.{rules.name}",
        drops=f"dropped_{rules.name}_",
        per_row=rules,
    )


STAGES: tuple[Stage, ...] = (
    Stage(name="read", section="input", drops="quarantined_"),  # strata.pipeline.read, by groups
    Stage(
        name="url_filter",
        section="url_filter",
        drops="dropped_url_filter_",
        per_row=FilterUrls,
        counts={NO_URL: "no_url"},
        report_when_off={"no_url": 0},
    ),
    Stage(name="extract", section="extract", drops="dropped_extract_", per_row=ExtractMainText),
    Stage(name="language", section="language", drops="dropped_language_", per_row=IdentifyLanguage),
    filter_stage(GopherRepetition),
    filter_stage(GopherQuality),
    filter_stage(C4Quality),
    filter_stage(FineWebQuality),
    Stage(
        name="toxicity",
        section="quality.toxicity",
        drops="dropped_toxicity_",
        per_row=ToxicityScore,
    ),
    Stage(
        name="classifier",
        section="quality.classifier",
        drops="dropped_classifier_",
        per_row=QualityClassifier,
    ),
    Stage(
        name="decontamination",
        section="decontamination",
        drops="dropped_decontamination_",
        per_row=Decontaminate,
    ),
    Stage(
        name="exact_dedup",
        section="dedup.exact",
        drops="dropped_exact_duplicate",
        apply=_exact,
        checkpoint="filtered",
    ),
    Stage(
        name="minhash_dedup",
        section="dedup.minhash",
        drops=MINHASH_DROP,
        apply=_near,
        checkpoint="deduplicated",
        report_when_off=empty_near_report(),
    ),
    Stage(
        name="semantic_dedup",
        section="dedup.semantic",
        drops=SEMANTIC_DROP,
        apply=_semantic,
        report_when_off=empty_semantic_report(),
    ),
    Stage(name="pii", section="pii", drops="dropped_pii_", apply=_pii, report_when_off={"replaced": {}}),
)


# The leading per-row stages (read first), run by strata.pipeline.groups; the rest act on all rows.
DOCUMENT_STAGES: tuple[Stage, ...] = tuple(itertools.takewhile(lambda stage: stage.apply is None, STAGES))
DATASET_STAGES: tuple[Stage, ...] = STAGES[len(DOCUMENT_STAGES) :]


def checkpoint_sections() -> dict[str, list[str]]:
    """Each resume checkpoint → the job sections its rows depend on (its stage and all before)."""
    sections: list[str] = []
    out: dict[str, list[str]] = {}
    for stage in STAGES:
        sections.append(stage.section)
        if stage.checkpoint:
            out[stage.checkpoint] = list(sections)
    return out
