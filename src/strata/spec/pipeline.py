"""The pipeline job: raw documents in; extracted, filtered, deduplicated, balanced token shards out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section
from strata.spec.cleaning import DecontaminationSpec, PiiSpec, UrlFilterSpec
from strata.spec.dedup import URI_SCHEMES, DedupSpec
from strata.spec.quality import QualitySpec
from strata.spec.tokenizer import TokenizerSpec

# Input format by file name: suffix → reader (after removing .gz, .zst or .bz2). The reader of
# each format is strata.pipeline.read.READERS; code files are read as text documents.
CODE_SUFFIXES = (".py", ".js", ".ts", ".go", ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".kt",
                 ".rb", ".php", ".sh", ".swift", ".scala", ".cs", ".lua", ".jl", ".sql", ".rst")  # fmt: skip
FORMAT_SUFFIXES: dict[str, str] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".warc": "warc",
    ".wet": "warc",
    ".arc": "warc",
    ".xml": "mediawiki",
    ".txt": "text",
    ".md": "text",
    ".text": "text",
    ".html": "text",
    ".htm": "text",
    **dict.fromkeys(CODE_SUFFIXES, "text"),
}
COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2")
SUFFIX_HINT = (
    f"{', '.join(sorted(set(FORMAT_SUFFIXES) - set(CODE_SUFFIXES)))} or a source-code suffix "
    f"(optionally {', '.join(COMPRESSION_SUFFIXES)})"
)
MEDIA_TYPE = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/([a-z0-9][a-z0-9!#$&^_.+-]*|\*)$"


def format_from_name(path: str) -> str | None:
    """The reader a file name implies (see FORMAT_SUFFIXES), or None when the name does not tell."""
    name = path.lower()
    for compression in COMPRESSION_SUFFIXES:
        name = name.removesuffix(compression)
    suffix = name[name.rfind(".") :] if "." in name.rsplit("/", 1)[-1] else ""
    return FORMAT_SUFFIXES.get(suffix)


class InputSpec(Section):
    """Where documents come from."""

    paths: list[str] = Field(
        default_factory=list,
        description="Files, folders (read recursively) or s3:// / gs:// URIs; local paths relative to the repo root.",
    )
    format: Literal["auto", "jsonl", "parquet", "text", "warc", "mediawiki"] = Field(
        "auto",
        description="Reader; auto picks it from each file name (.jsonl[.gz|.zst], .parquet, .txt/.md/.html, .warc[.gz], .wet[.gz], .xml[.bz2]).",
    )
    content: Literal["auto", "text", "html"] = Field(
        "auto",
        description="What the text field holds; auto: HTML for WARC responses and .html files, text otherwise.",
    )
    content_types: list[str] = Field(
        default_factory=lambda: ["text/html", "application/xhtml+xml", "text/plain"],
        description=(
            "WARC records read as documents, by media type (HTTP Content-Type of a response, the record's "
            "own for resource/conversion; 'text/*' matches a whole type); others are counted by type."
        ),
    )
    text_key: str = Field("text", description="Field that holds the document text (JSONL, Parquet).")
    id_key: str | None = Field(
        "id", description="Field with a stable document id; None uses source + offset."
    )
    max_doc_bytes: int = Field(1_000_000, ge=1, description="Larger documents are quarantined, not read.")
    files_per_task: int = Field(
        1,
        ge=1,
        description=(
            "Input files per task of the per-document stages (read to decontamination); each group's rows "
            "are kept when it finishes, so a rerun of a killed job reruns only unfinished groups."
        ),
    )

    @field_validator("paths")
    @classmethod
    def _paths_exist(cls, paths: list[str]) -> list[str]:
        missing = [p for p in paths if not p.startswith(URI_SCHEMES) and not Path(p).exists()]
        if missing:
            raise ValueError(
                f"input path(s) not found: {', '.join(missing)} (paths are relative to the repo root)"
            )
        return paths

    @field_validator("content_types")
    @classmethod
    def _media_types(cls, types: list[str]) -> list[str]:
        bad = [t for t in types if not re.match(MEDIA_TYPE, t)]
        if bad:
            raise ValueError(
                f"input.content_types: {bad} are not media types; write them lower-case as type/subtype "
                "or type/* (e.g. text/html, text/*)"
            )
        return types

    @model_validator(mode="after")
    def _format_of_named_files(self) -> InputSpec:
        """A file named in paths (not a folder) must tell its format, or the job must name it."""
        if self.format != "auto":
            return self
        unknown = [
            p
            for p in self.paths
            if not p.startswith(URI_SCHEMES) and Path(p).is_file() and format_from_name(p) is None
        ]
        if unknown:
            raise ValueError(
                f"input.paths: cannot tell the format of {', '.join(unknown)} from the name; name it "
                f"{SUFFIX_HINT}, or set input.format (jsonl, parquet, text, warc or mediawiki)"
            )
        return self


class CommonCrawlSource(Section):
    """One Common Crawl crawl: its path list, then the files it names."""

    crawl: str = Field(pattern=r"^CC-MAIN-\d{4}-\d{2}$", description="Crawl id, e.g. CC-MAIN-2024-10.")
    files: Literal["wet", "warc"] = Field("wet", description="WET (extracted text) or WARC (HTML) files.")
    max_files: int = Field(0, ge=0, description="Files to take from the list (0: all).")
    base_url: str = Field(
        "https://data.commoncrawl.org",
        pattern=r"^https?://",
        description="Where crawl-data/ is served (http(s)).",
    )


class GitSource(Section):
    """A code repository, cloned shallowly; its source files are read as text documents."""

    url: str = Field(pattern=r"^(https://|file://)", description="Repository URL (https:// or file://).")
    ref: str | None = Field(None, description="Branch or tag to clone; None: the default branch.")


class CollectSpec(Section):
    """Downloads before reading: crawls and URLs into `dir`, which is then read as input."""

    dir: str = Field("", description="Download folder, relative to the repo root (required with sources).")
    common_crawl: list[CommonCrawlSource] = Field(default_factory=list, description="Crawls to fetch.")
    urls: list[str] = Field(
        default_factory=list, description="Plain http(s) URLs: dump files, JSONL/Parquet exports, WARCs."
    )
    git: list[GitSource] = Field(default_factory=list, description="Code repositories to clone.")
    requests_per_second: float = Field(2.0, gt=0, description="One limit for all workers together.")
    max_retries: int = Field(5, ge=0, description="Retries of a 429/5xx/connection failure per request.")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry (or Retry-After).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")

    @property
    def has_sources(self) -> bool:
        """Whether there is anything to download."""
        return bool(self.common_crawl or self.urls or self.git)

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"collect.urls must be http(s) URLs (s3:// and gs:// go in input.paths): {bad}")
        return urls

    @model_validator(mode="after")
    def _dir_with_sources(self) -> CollectSpec:
        if self.has_sources and not self.dir:
            raise ValueError("collect.dir is required when collect has sources (where downloads go)")
        if "://" in self.dir:
            raise ValueError(
                f"collect.dir must be a local folder, got {self.dir} (downloads are written locally)"
            )
        return self


class ExtractSpec(Section):
    """Main-text extraction from HTML (trafilatura), for documents whose content is HTML."""

    enabled: bool = Field(True, description="Run extraction on HTML documents.")
    timeout_s: float = Field(
        5.0, gt=0, description="Per-document time limit; a document over it is dropped, the worker lives on."
    )
    favor_precision: bool = Field(False, description="trafilatura: prefer less text but less boilerplate.")


class LanguageSpec(Section):
    """Language ID with py3langid (its model ships inside the package)."""

    enabled: bool = Field(True, description="Identify languages and filter by them.")
    keep: list[str] = Field(
        default_factory=list, description="ISO 639-1 codes to keep; empty keeps every language."
    )
    min_score: float = Field(0.65, ge=0, le=1, description="Documents scoring lower are dropped.")
    min_score_by_language: dict[str, float] = Field(
        default_factory=dict, description="Per-language score thresholds overriding min_score."
    )


GroupColumn = Literal["language", "source"]


def _by_language() -> list[GroupColumn]:
    return ["language"]


class BalanceSpec(Section):
    """Temperature sampling over (language, source) groups towards a token budget."""

    enabled: bool = Field(False, description="Resample documents by group.")
    by: list[GroupColumn] = Field(
        default_factory=_by_language, min_length=1, description="Columns that define a group."
    )
    alpha: float = Field(
        0.3, gt=0, le=1, description="Group g gets a share ∝ n_g^alpha (1: as found, → 0: uniform)."
    )
    token_budget: int | None = Field(
        None, ge=1, description="Tokens to write in all; None keeps today's total and only reweights."
    )
    max_repeats: float = Field(
        4.0, ge=1, description="A group is never repeated more than this many times (UniMax-style cap)."
    )


class ShardSpec(Section):
    """Token shards for training."""

    tokens_per_shard: int = Field(1_000_000, ge=1024, description="Tokens per .bin shard (approx.).")


class PipelineOutputSpec(Section):
    """Where results go."""

    dir: str = Field(description="Output directory, relative to the repo root, or an s3:// prefix.")


class PipelineJob(Section):
    """A data pipeline job."""

    kind: Literal["pipeline"] = Field(description="Job kind.")
    name: str = Field(min_length=1, description="Job name.")
    seed: int = Field(0, description="Seed for everything random in the job.")
    collect: CollectSpec = Field(default_factory=CollectSpec, description="Downloads before reading.")
    input: InputSpec = Field(default_factory=InputSpec, description="Input documents.")
    url_filter: UrlFilterSpec = Field(
        default_factory=UrlFilterSpec, description="URL and domain block lists."
    )
    extract: ExtractSpec = Field(default_factory=ExtractSpec, description="HTML main-text extraction.")
    language: LanguageSpec = Field(default_factory=LanguageSpec, description="Language ID.")
    quality: QualitySpec = Field(default_factory=QualitySpec, description="Quality filters.")
    decontamination: DecontaminationSpec = Field(
        default_factory=DecontaminationSpec, description="Evaluation-set n-gram overlap."
    )
    dedup: DedupSpec = Field(default_factory=DedupSpec, description="Deduplication.")
    pii: PiiSpec = Field(default_factory=PiiSpec, description="PII replaced by placeholders.")
    balance: BalanceSpec = Field(default_factory=BalanceSpec, description="Language/source balancing.")
    tokenizer: TokenizerSpec = Field(
        default_factory=TokenizerSpec, description="Tokenizer: a trained BPE, or an existing tokenizer.json."
    )
    shards: ShardSpec = Field(default_factory=ShardSpec, description="Shards.")
    output: PipelineOutputSpec = Field(description="Outputs.")

    @model_validator(mode="after")
    def _something_to_read(self) -> PipelineJob:
        if not self.input.paths and not self.collect.dir:
            raise ValueError("nothing to read: set input.paths, or collect sources and collect.dir")
        return self

    @model_validator(mode="after")
    def _minhash_shape(self) -> PipelineJob:
        m = self.dedup.minhash
        if m.bands * m.rows > 1024:
            raise ValueError(f"bands({m.bands}) * rows({m.rows}) = {m.bands * m.rows} > 1024 permutations")
        return self
