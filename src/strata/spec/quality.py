"""The pipeline's quality section: the rule sets (Gopher, C4, FineWeb), toxicity and the
quality classifier, one field of `QualitySpec` each."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section


class RuleSpec(Section):
    """Fields every quality rule set shares."""

    enabled: bool = Field(True, description="Run this filter.")
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="Languages it applies to (documents of others pass); empty: all. Needs language ID.",
    )


class GopherQualitySpec(RuleSpec):
    """Gopher quality rules (Rae et al. 2021); defaults are the published thresholds."""

    min_words: int = Field(50, ge=0, description="Fewer words than this: dropped.")
    max_words: int = Field(100_000, ge=1, description="More words than this: dropped.")
    min_mean_word_length: float = Field(3.0, description="Shorter mean word length: dropped.")
    max_mean_word_length: float = Field(10.0, description="Longer mean word length: dropped.")
    max_symbol_word_ratio: float = Field(0.1, description="Max '#' and '...' per word, each.")
    max_bullet_lines_ratio: float = Field(0.9, description="Max share of lines starting with a bullet.")
    max_ellipsis_lines_ratio: float = Field(0.3, description="Max share of lines ending in an ellipsis.")
    min_alpha_words_ratio: float = Field(0.8, description="Min share of words with a letter.")
    min_stop_words: int = Field(2, ge=0, description="Min count of English stop words.")


class GopherRepetitionSpec(RuleSpec):
    """Gopher repetition rules (Rae et al. 2021, table A1); defaults are the published thresholds."""

    max_dup_line_frac: float = Field(0.30, description="Max share of lines that repeat an earlier line.")
    max_dup_para_frac: float = Field(0.30, description="Max share of paragraphs that repeat one.")
    max_dup_line_char_frac: float = Field(0.20, description="Max share of characters in repeated lines.")
    max_dup_para_char_frac: float = Field(0.20, description="Max share of characters in repeated paragraphs.")
    max_top_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
        description="n → max share of characters covered by the most frequent word n-gram.",
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n → max share of characters in repeated word n-grams.",
    )

    @field_validator("max_top_ngram_char_frac", "max_dup_ngram_char_frac")
    @classmethod
    def _ngram_sizes(cls, table: dict[int, float]) -> dict[int, float]:
        bad = sorted(n for n in table if n < 1)
        if bad:
            raise ValueError(f"word n-gram sizes must be at least 1, got {bad}")
        return table


class C4Spec(RuleSpec):
    """C4 rules (Raffel et al. 2020): line cleanup, then document rules."""

    min_words_per_line: int = Field(3, ge=0, description="Lines with fewer words are removed.")
    require_terminal_punctuation: bool = Field(
        True, description="Remove lines not ending in . ! ? or a quote."
    )
    max_word_length: int = Field(1000, ge=1, description="Lines with a longer word are removed.")
    remove_javascript_lines: bool = Field(True, description="Remove lines mentioning javascript.")
    remove_policy_lines: bool = Field(True, description="Remove cookie/terms/privacy policy lines.")
    drop_lorem_ipsum: bool = Field(True, description="Drop documents containing 'lorem ipsum'.")
    drop_curly_bracket: bool = Field(True, description="Drop documents containing '{' (code).")
    min_sentences: int = Field(5, ge=0, description="Drop documents with fewer sentences after cleanup.")


class FineWebSpec(RuleSpec):
    """FineWeb's own rules (Penedo et al. 2024); defaults are the published thresholds."""

    min_line_punct_ratio: float = Field(0.12, description="Min share of lines ending in punctuation.")
    max_short_line_ratio: float = Field(0.67, description="Max share of lines of <= short_line_chars.")
    short_line_chars: int = Field(30, ge=1, description="A line this long or shorter is short.")
    max_dup_line_char_ratio: float = Field(0.01, description="Max share of characters in repeated lines.")
    max_newline_word_ratio: float = Field(0.3, description="Max newlines per word (lists).")


# The first int32 of every fastText .bin and .ftz file (fastText's FASTTEXT_FILEFORMAT_MAGIC_INT32).
FASTTEXT_MAGIC = 793712314


class ClassifierSpec(RuleSpec):
    """A fastText quality classifier (the DCLM recipe: `strata classifier train`, or a published
    model such as DCLM's fasttext-oh-eli5). Documents whose probability of `label` is under
    `threshold` are dropped; every scored document keeps its probability in `quality_score`."""

    enabled: bool = Field(False, description="Run the classifier (needs model).")
    model: str = Field(
        "",
        description="fastText .bin/.ftz file, relative to the repo root; every worker node must read it there.",
    )
    label: str = Field("__label__hq", description="The label whose probability is the quality score.")
    threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Documents scoring under this are dropped (DCLM's example config: 0.018112 for its model).",
    )

    @field_validator("model")
    @classmethod
    def _fasttext_file(cls, model: str) -> str:
        if not model:
            return model
        path = Path(model)
        if not path.is_file():
            raise ValueError(
                f"model file not found: {model} (paths are relative to the repo root; "
                "train one with `strata classifier train`)"
            )
        with path.open("rb") as f:
            magic = int.from_bytes(f.read(4), "little")
        if magic != FASTTEXT_MAGIC:
            raise ValueError(f"{model} is not a fastText model (.bin or .ftz written by fastText)")
        return model

    @model_validator(mode="after")
    def _model_when_enabled(self) -> ClassifierSpec:
        if self.enabled and not self.model:
            raise ValueError("model: required when the classifier is enabled (a fastText .bin file)")
        return self


class ToxicitySpec(RuleSpec):
    """Offensive-language score from alt-profanity-check (English; its model ships in the package).
    A document scores its most offensive sentence; documents at or above `threshold` are dropped."""

    enabled: bool = Field(False, description="Score and drop offensive documents.")
    threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Drop a document whose toxicity_score reaches this (precision/recall: docs/benchmarks.md).",
    )


class QualitySpec(Section):
    """Quality filters: one field per rule set, named as its filter; they run in the order of
    the pipeline's stage registry (strata/pipeline/registry.py), not in the order of these fields."""

    gopher_repetition: GopherRepetitionSpec = Field(
        default_factory=GopherRepetitionSpec, description="Gopher repetition."
    )
    gopher: GopherQualitySpec = Field(default_factory=GopherQualitySpec, description="Gopher quality.")
    c4: C4Spec = Field(
        default_factory=lambda: C4Spec(enabled=False), description="C4 rules (off by default)."
    )
    fineweb: FineWebSpec = Field(default_factory=FineWebSpec, description="FineWeb rules.")
    toxicity: ToxicitySpec = Field(
        default_factory=ToxicitySpec, description="Offensive-language score (off by default)."
    )
    classifier: ClassifierSpec = Field(
        default_factory=ClassifierSpec, description="fastText quality classifier (off by default)."
    )
