"""The pipeline job: JSONL in, quality-filtered, deduplicated token shards out."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section


class InputSpec(Section):
    """Where documents come from."""

    paths: list[str] = Field(min_length=1, description="JSONL files, relative to the repo root.")
    format: Literal["jsonl"] = Field("jsonl", description="Input format.")
    text_key: str = Field("text", description="Field that holds the document text.")
    id_key: str | None = Field("id", description="Field with a stable document id; None uses path:line.")
    max_doc_bytes: int = Field(1_000_000, ge=1, description="Larger documents are quarantined, not read.")

    @field_validator("paths")
    @classmethod
    def _paths_exist(cls, paths: list[str]) -> list[str]:
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise ValueError(
                f"input file(s) not found: {', '.join(missing)} (paths are relative to the repo root)"
            )
        return paths


class GopherQualitySpec(Section):
    """Gopher quality rules (Rae et al. 2021); defaults are the published thresholds."""

    enabled: bool = Field(True, description="Run this filter.")
    min_words: int = Field(50, ge=0, description="Fewer words than this: dropped.")
    max_words: int = Field(100_000, ge=1, description="More words than this: dropped.")
    min_mean_word_length: float = Field(3.0, description="Shorter mean word length: dropped.")
    max_mean_word_length: float = Field(10.0, description="Longer mean word length: dropped.")
    max_symbol_word_ratio: float = Field(0.1, description="Max '#' and '...' per word, each.")
    max_bullet_lines_ratio: float = Field(0.9, description="Max share of lines starting with a bullet.")
    max_ellipsis_lines_ratio: float = Field(0.3, description="Max share of lines ending in an ellipsis.")
    min_alpha_words_ratio: float = Field(0.8, description="Min share of words with a letter.")
    min_stop_words: int = Field(2, ge=0, description="Min count of English stop words.")


class QualitySpec(Section):
    """Quality filters, in order."""

    gopher: GopherQualitySpec = Field(default_factory=GopherQualitySpec, description="Gopher quality.")


class ExactDedupSpec(Section):
    """Exact duplicates: hash of case- and whitespace-normalized text."""

    enabled: bool = Field(True, description="Run exact dedup.")


class MinhashSpec(Section):
    """Near duplicates: MinHash LSH over word n-grams (datasketch), verified by estimated Jaccard."""

    enabled: bool = Field(True, description="Run MinHash dedup.")
    ngram: int = Field(5, ge=1, description="Words per shingle.")
    bands: int = Field(14, ge=1, description="LSH bands.")
    rows: int = Field(8, ge=1, description="Rows (hashes) per band.")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Candidates with estimated Jaccard below this are kept."
    )
    seed: int = Field(1, description="MinHash permutation seed.")


class DedupSpec(Section):
    """Deduplication steps."""

    exact: ExactDedupSpec = Field(default_factory=ExactDedupSpec, description="Exact dedup.")
    minhash: MinhashSpec = Field(default_factory=MinhashSpec, description="MinHash dedup.")


class TokenizerSpec(Section):
    """Byte-level BPE trained on the kept documents with HF tokenizers."""

    vocab_size: int = Field(8192, ge=257, le=65535, description="Vocabulary size (fits uint16).")
    min_frequency: int = Field(2, ge=1, description="Min pair frequency for a merge.")


class ShardSpec(Section):
    """Token shards for training."""

    tokens_per_shard: int = Field(1_000_000, ge=1024, description="Tokens per .bin shard (approx.).")


class PipelineOutputSpec(Section):
    """Where results go."""

    dir: str = Field(description="Output directory, relative to the repo root.")


class PipelineJob(Section):
    """A data pipeline job."""

    kind: Literal["pipeline"] = Field(description="Job kind.")
    name: str = Field(min_length=1, description="Job name.")
    seed: int = Field(0, description="Seed for everything random in the job.")
    input: InputSpec = Field(description="Input documents.")
    quality: QualitySpec = Field(default_factory=QualitySpec, description="Quality filters.")
    dedup: DedupSpec = Field(default_factory=DedupSpec, description="Deduplication.")
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec, description="Tokenizer.")
    shards: ShardSpec = Field(default_factory=ShardSpec, description="Shards.")
    output: PipelineOutputSpec = Field(description="Outputs.")

    @model_validator(mode="after")
    def _minhash_shape(self) -> PipelineJob:
        m = self.dedup.minhash
        if m.bands * m.rows > 1024:
            raise ValueError(f"bands({m.bands}) * rows({m.rows}) = {m.bands * m.rows} > 1024 permutations")
        return self
