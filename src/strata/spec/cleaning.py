"""Job sections of the cleaning stages beyond the quality rules: PII, URL block lists and
decontamination (strata.pipeline.pii, .urls, .decontaminate)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section

BENCHMARK_NAME = r"^[a-z0-9][a-z0-9_]*$"


class PiiSpec(Section):
    """PII replaced by fixed placeholders, as FineWeb does (datatrove's PIIFormatter)."""

    enabled: bool = Field(True, description="Replace PII in every kept document.")
    emails: bool = Field(
        True, description="Replace e-mail addresses with email@example.com-style placeholders."
    )
    ip_addresses: bool = Field(
        True, description="Replace public IPv4/IPv6 addresses (ipaddress is_global; private, reserved left)."
    )
    phone_numbers: bool = Field(
        False, description="Replace phone numbers in international (+CC ...) or (NNN) NNN-NNNN form."
    )


class BenchmarkSpec(Section):
    """One evaluation set: a JSONL file (optionally .gz) of records whose fields hold prompts and answers."""

    name: str = Field(pattern=BENCHMARK_NAME, description="Names the drop: dropped_decontamination_<name>.")
    path: str = Field(description="JSONL or JSONL.gz file, relative to the repo root.")
    fields: list[str] = Field(min_length=1, description="Record fields whose text is matched (e.g. prompt).")

    @field_validator("path")
    @classmethod
    def _file_exists(cls, path: str) -> str:
        if not Path(path).is_file():
            raise ValueError(f"benchmark file {path} not found (paths are relative to the repo root)")
        return path


class DecontaminationSpec(Section):
    """Documents sharing a word n-gram with an evaluation set are dropped (GPT-3, Brown et al. 2020, app. C)."""

    enabled: bool = Field(True, description="Run decontamination (it does nothing without benchmarks).")
    ngram: int = Field(13, ge=1, description="Words per n-gram (13: GPT-3).")
    benchmarks: list[BenchmarkSpec] = Field(default_factory=list, description="Evaluation sets to protect.")

    @model_validator(mode="after")
    def _names_once(self) -> DecontaminationSpec:
        names = [b.name for b in self.benchmarks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"decontamination.benchmarks: names {twice} appear twice; name each set once")
        return self


class UrlFilterSpec(Section):
    """Documents dropped by their URL: block lists matched on the registrable domain, banned words."""

    enabled: bool = Field(True, description="Run the URL filter (it does nothing without lists or words).")
    blocklists: list[str] = Field(
        default_factory=list,
        description="Files of domains, subdomains or full URLs, one a line, '#' comments; repo-relative.",
    )
    banned_words: list[str] = Field(
        default_factory=list, description="Lower-case words; a URL with one among its tokens is dropped."
    )

    @field_validator("blocklists")
    @classmethod
    def _lists_exist(cls, paths: list[str]) -> list[str]:
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            raise ValueError(
                f"url_filter.blocklists: {', '.join(missing)} not found (paths are relative to the repo root)"
            )
        return paths

    @field_validator("banned_words")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        bad = [w for w in words if not re.fullmatch(r"[a-z0-9]+", w)]
        if bad:
            raise ValueError(
                f"url_filter.banned_words: {bad} are not single lower-case words of letters and digits "
                "(URLs are split into such tokens)"
            )
        return words
