"""The scaling sweep job: a grid of model shapes × token budgets, trained and fitted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from strata.spec.base import Section
from strata.spec.train import BatchSpec, EvalSpec, OptimizerSpec, TrainDataSpec, TrainOutputSpec


class SweepModelSpec(Section):
    """One model shape of the grid (the sequence length is the sweep's)."""

    n_layers: int = Field(ge=1, description="Transformer blocks.")
    d_model: int = Field(ge=8, description="Hidden size.")
    n_heads: int = Field(ge=1, description="Attention heads.")


class SweepJob(Section):
    """Train every (model, token budget) pair on one CPU or GPU each, then fit L(N, D)."""

    kind: Literal["sweep"] = Field(description="Job kind.")
    name: str = Field(min_length=1, description="Job name.")
    seed: int = Field(0, description="Seed for weights and sample order.")
    data: TrainDataSpec = Field(
        description="Token shards written by a pipeline job; with `validation`, the law is fitted on each "
        "run's validation loss."
    )
    seq_len: int = Field(64, ge=8, description="Tokens per sample, for every run.")
    models: list[SweepModelSpec] = Field(min_length=2, description="Model shapes.")
    tokens: list[int] = Field(min_length=2, description="Token budgets; each run trains on this many tokens.")
    batch: BatchSpec = Field(default_factory=BatchSpec, description="Batch sizes of each run.")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="Optimizer of each run.")
    use_gpu: bool = Field(False, description="One GPU per run instead of one CPU.")
    bootstrap: int = Field(100, ge=0, description="Bootstrap resamples for the constants' intervals.")
    eval: EvalSpec = Field(
        default_factory=EvalSpec,
        description="Validation loss after each run's last step (with data.validation; `samples` held-out "
        "samples, the same ones for every run; `every_steps` is not used).",
    )
    output: TrainOutputSpec = Field(description="Outputs: results.jsonl, fit.json, sweep.png.")

    @field_validator("tokens")
    @classmethod
    def _positive(cls, tokens: list[int]) -> list[int]:
        if any(t < 1 for t in tokens):
            raise ValueError(f"token budgets must be positive, got {tokens}")
        return tokens

    @field_validator("models")
    @classmethod
    def _heads_divide(cls, models: list[SweepModelSpec]) -> list[SweepModelSpec]:
        for i, m in enumerate(models):
            if m.d_model % m.n_heads:
                raise ValueError(f"models[{i}]: d_model({m.d_model}) % n_heads({m.n_heads}) != 0")
        return models
