"""The training job: a GPT or Llama-style model trained with DeepSpeed ZeRO on Ray Train workers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from strata.spec.base import Section
from strata.spec.models import PRESETS


class ValidationSpec(Section):
    """Held-out data for the validation loss: shards of their own, or a share of the training
    shards' documents that training never reads."""

    shards: str | None = Field(None, description="Directory of held-out shards (same tokenizer).")
    fraction: float | None = Field(
        None, gt=0, lt=1, description="Share of the training shards' documents held out (by document index)."
    )
    seed: int = Field(0, description="Seed of the rule that picks held-out documents (not the job's seed).")

    @model_validator(mode="after")
    def _one_source(self) -> ValidationSpec:
        if (self.shards is None) == (self.fraction is None):
            raise ValueError("give exactly one of shards (held-out shards) or fraction (of documents)")
        return self


def _local_folder(value: str, why_and_fix: str) -> str:
    """`value` unless it is a URL (`s3://`, `gs://`): training reads and writes local files."""
    if "://" in value:
        raise ValueError(f"must be a local folder, got {value}: {why_and_fix}")
    return value


BLEND_BLOCK = 10_000  # samples per repeat of a blend's pattern (strata.train.blend)


def _local_shards(shards: str) -> str:
    return _local_folder(
        shards,
        f"training memory-maps the shards; copy them to a local or shared folder first "
        f"(`aws s3 sync {shards} DIR`) and name DIR here",
    )


class SourceSpec(Section):
    """One shard directory of a blend and its share of the training samples."""

    shards: str = Field(description="Directory of shards (a pipeline's output `shards/`), local.")
    weight: float = Field(gt=0, description="Share of the samples (weights are normalised to sum to 1).")
    name: str | None = Field(
        None, description="Label in the metrics (default: the pipeline output's folder name)."
    )

    @field_validator("shards")
    @classmethod
    def _local(cls, shards: str) -> str:
        return _local_shards(shards)


class TrainDataSpec(Section):
    """Token shards written by a pipeline job: one directory, or a blend of several."""

    shards: str | None = Field(
        None, description="Directory of shards (a pipeline's output `shards/`), local; or give `sources`."
    )
    sources: list[SourceSpec] | None = Field(
        None,
        min_length=2,
        description="A blend: shard directories (web, code, books, … from separate pipeline runs, one "
        "tokenizer) with weights; instead of `shards`.",
    )
    validation: ValidationSpec | None = Field(
        None, description="Held-out data for the validation loss (none: training loss only)."
    )

    @field_validator("shards")
    @classmethod
    def _local(cls, shards: str | None) -> str | None:
        return None if shards is None else _local_shards(shards)

    @model_validator(mode="after")
    def _one_kind(self) -> TrainDataSpec:
        if (self.shards is None) == (self.sources is None):
            raise ValueError("give exactly one of shards (one directory) or sources (a blend)")
        sources = self.sources or []
        total = sum(s.weight for s in sources)
        for i, source in enumerate(sources):
            if source.weight / total < 1 / BLEND_BLOCK:
                raise ValueError(
                    f"sources[{i}].weight {source.weight}: under 1/{BLEND_BLOCK} of the total, the source "
                    "would never be drawn (samples are blended in blocks of that many); raise it or drop the source"
                )
        names = [s.name for s in sources if s.name]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must differ, got {names}")
        return self

    def sample_order(self) -> str:
        """What fixes the order of the training samples besides the job's seed and global batch
        (a checkpoint records it): the blend's weights and the held-out rule, not the folders'
        paths, which may move."""
        v = self.validation
        held = f"; held out: fraction {v.fraction}, seed {v.seed}" if v is not None and v.fraction else ""
        return f"weights {[s.weight for s in self.blend()]}{held}"

    def blend(self) -> list[SourceSpec]:
        """The job's shard directories with their weights (one, weight 1, without `sources`)."""
        if self.sources is not None:
            return self.sources
        assert self.shards is not None  # _one_kind
        return [SourceSpec(shards=self.shards, weight=1.0)]


class EvalSpec(Section):
    """Validation loss on a fixed set of held-out samples (needs data.validation)."""

    every_steps: int = Field(
        0, ge=0, description="Validation loss every N steps (0: after the last step only)."
    )
    samples: int = Field(
        64, ge=1, description="Held-out samples evaluated: the first N of the held-out stream, for every run."
    )


class ModelSpec(Section):
    """Model family and shape. The vocabulary size comes from the shards' tokenizer."""

    family: Literal["gpt", "llama"] = Field(
        "gpt", description="gpt: LayerNorm, GELU, learned positions, tied; llama: RMSNorm, SwiGLU, RoPE, GQA."
    )
    preset: str | None = Field(
        None, description="A llama shape by name (llama-10m ... llama-70b); sets the shape fields."
    )
    n_layers: int = Field(2, ge=1, description="Transformer blocks.")
    d_model: int = Field(128, ge=8, description="Hidden size.")
    n_heads: int = Field(4, ge=1, description="Attention heads.")
    n_kv_heads: int | None = Field(None, ge=1, description="Key/value heads (llama; default n_heads).")
    ffn_hidden: int | None = Field(
        None, ge=1, description="SwiGLU hidden size (llama; default 8/3 d_model rounded up to 256)."
    )
    tie_embeddings: bool = Field(
        False, description="Share input and output embeddings (llama; gpt always ties)."
    )
    rope_theta: float = Field(10_000.0, gt=0, description="Rotary base (llama).")
    seq_len: int = Field(128, ge=8, description="Tokens per sample.")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = data["preset"]
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        clash = sorted(k for k, v in PRESETS[preset].items() if k in data and data[k] != v)
        if clash:
            raise ValueError(f"preset {preset!r} sets the shape; remove {', '.join(clash)} or the preset")
        return {**data, "family": data.get("family", "llama"), **PRESETS[preset]}

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model({self.d_model}) % n_heads({self.n_heads}) != 0")
        llama_only = (self.preset, self.n_kv_heads, self.ffn_hidden, self.tie_embeddings or None)
        if self.family == "gpt" and any(value is not None for value in llama_only):
            raise ValueError("preset, n_kv_heads, ffn_hidden and tie_embeddings belong to family 'llama'")
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads({self.n_heads}) % n_kv_heads({self.kv_heads}) != 0")
        return self

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def ffn_size(self) -> int:
        return self.ffn_hidden or -(-8 * self.d_model // 3 // 256) * 256


class OptimizerSpec(Section):
    """AdamW with linear warmup then cosine decay."""

    lr: float = Field(3e-3, gt=0, description="Peak learning rate.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final LR as a share of the peak.")
    weight_decay: float = Field(0.1, ge=0, description="Decoupled weight decay.")
    betas: tuple[float, float] = Field((0.9, 0.95), description="Adam betas.")
    warmup_steps: int = Field(10, ge=0, description="Linear warmup steps.")
    grad_clip: float = Field(1.0, ge=0, description="Gradient norm clip; 0 disables.")


class ZeroSpec(Section):
    """DeepSpeed ZeRO."""

    stage: Literal[0, 1, 2, 3] = Field(2, description="ZeRO stage.")
    offload_optimizer: bool = Field(
        False,
        description="Keep the fp32 master weights and Adam state in CPU memory and step there "
        "(ZeRO-Offload; stages 1-3): less accelerator memory, slower steps.",
    )

    @model_validator(mode="after")
    def _offload_needs_partitioning(self) -> ZeroSpec:
        if self.offload_optimizer and self.stage == 0:
            raise ValueError(
                "offload_optimizer needs ZeRO stage 1, 2 or 3 (stage 0 keeps the optimizer whole)"
            )
        return self


class ParallelSpec(Section):
    """Model parallelism over the workers (data parallelism takes what is left)."""

    pipeline_stages: int = Field(
        1,
        ge=1,
        description="Pipeline stages (DeepSpeed PipelineModule): each holds a contiguous share of the "
        "decoder layers; workers / stages data-parallel replicas. llama family, untied embeddings, ZeRO 0-1.",
    )
    tensor: int = Field(
        1,
        ge=1,
        description="Tensor-parallel ranks: on deepspeed, DeepSpeed AutoTP (groups of this many "
        "consecutive workers each hold 1/tensor of every attention and MLP weight and of the output head, "
        "and read the same samples; llama family, ZeRO 0-3, no pipeline stages; must divide the heads, "
        "key/value heads and ffn_hidden, and the vocabulary, checked against the shards); on jax, the "
        "mesh's `tensor` axis.",
    )
    fsdp: int = Field(
        1,
        ge=1,
        description="Ways parameters and optimizer state are sharded (the mesh's `fsdp` axis, which also "
        "splits the batch): backend jax only; deepspeed shards with zero.stage.",
    )


class BatchSpec(Section):
    """Batch sizes per worker."""

    micro_batch_size: int = Field(8, ge=1, description="Samples per worker per micro-step.")
    grad_accum_steps: int = Field(1, ge=1, description="Micro-steps per optimizer step.")
    global_batch_size: int | None = Field(
        None,
        ge=1,
        description="Samples per optimizer step over all workers; sets grad_accum_steps to "
        "global / (micro_batch_size × data-parallel ranks). Keep it fixed to resume on another worker count.",
    )


class WorkersSpec(Section):
    """Ray Train workers."""

    num_workers: int = Field(
        2,
        ge=1,
        description="Ray Train workers: parallel.tensor × parallel.pipeline_stages × data-parallel ranks.",
    )
    use_gpu: bool = Field(False, description="One GPU per worker (NCCL) instead of CPU (gloo).")
    cpus_per_worker: int = Field(1, ge=1, description="CPUs reserved per worker.")
    collective_timeout_s: int = Field(
        300, ge=10, description="Seconds a collective may wait before the run fails (a hung rank surfaces)."
    )


class TrainOutputSpec(Section):
    """Where checkpoints and metrics go."""

    dir: str = Field(description="Output directory, relative to the repo root; local, not s3://.")

    @field_validator("dir")
    @classmethod
    def _local_dir(cls, out: str) -> str:
        return _local_folder(
            out,
            "checkpoints and metrics are written and resumed with local file APIs; write to a "
            f"local or shared folder and copy it to object storage afterwards (`aws s3 sync DIR {out}`)",
        )


class CheckpointSpec(Section):
    """Checkpoints: every rank saves its DeepSpeed shard and reports it to Ray Train."""

    every_steps: int = Field(0, ge=0, description="Save every N steps (0: only at the end).")
    keep: int = Field(2, ge=1, description="Checkpoints Ray Train keeps; older ones are deleted.")
    max_failures: int = Field(
        2, ge=0, description="Worker-group failures to recover from, resuming at the last checkpoint."
    )


class TrainJob(Section):
    """A training job."""

    kind: Literal["train"] = Field(description="Job kind.")
    name: str = Field(min_length=1, description="Job name.")
    seed: int = Field(0, description="Seed for weights and sample order.")
    data: TrainDataSpec = Field(description="Training data.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="Model shape.")
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="Optimizer.")
    zero: ZeroSpec = Field(default_factory=ZeroSpec, description="ZeRO.")
    parallel: ParallelSpec = Field(default_factory=ParallelSpec, description="Pipeline parallelism.")
    batch: BatchSpec = Field(default_factory=BatchSpec, description="Batch sizes.")
    eval: EvalSpec = Field(default_factory=EvalSpec, description="Validation loss.")
    steps: int = Field(ge=1, description="Optimizer steps.")
    compile: bool = Field(
        False, description="Compile the model with torch.compile (DeepSpeed engine.compile)."
    )
    activation_checkpointing: bool = Field(
        False,
        description="Recompute each transformer block's activations in the backward pass instead of "
        "keeping them: memory for one block's input per layer, about a third more compute.",
    )
    precision: Literal["bf16", "autocast"] = Field(
        "bf16",
        description="On GPU: bf16 keeps bf16 weights with fp32 master copies in DeepSpeed; autocast "
        "keeps fp32 weights and runs matrix products in bf16 (torch.autocast). CPU runs are fp32.",
    )
    workers: WorkersSpec = Field(default_factory=WorkersSpec, description="Workers.")
    backend: Literal["deepspeed", "jax"] = Field(
        "deepspeed",
        description="deepspeed: torch with DeepSpeed on Ray Train (GPU/CPU); jax: JAX on a device mesh "
        "(TPU slices; simulated CPU devices in tests), sharded by parallel.fsdp and parallel.tensor.",
    )
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Checkpoints and recovery."
    )
    output: TrainOutputSpec = Field(description="Outputs.")

    @model_validator(mode="after")
    def _backend_fits(self) -> TrainJob:
        """Options of one backend are refused on the other, by name."""
        p, zero = self.parallel, self.zero
        if self.backend == "deepspeed":
            refusals = {
                f"parallel.fsdp {p.fsdp}: fsdp is a jax mesh axis; deepspeed shards with zero.stage 3": p.fsdp
                != 1,
            }
        else:
            given_zero = "zero" in self.model_fields_set
            refusals = {
                f"zero.stage {zero.stage}: ZeRO is DeepSpeed's; jax shards parameters and optimizer state "
                "with parallel.fsdp (remove the zero section)": given_zero and zero.stage > 0,
                "zero.offload_optimizer is DeepSpeed's (remove it)": given_zero and zero.offload_optimizer,
                f"parallel.pipeline_stages {p.pipeline_stages}: DeepSpeed pipeline stages do not exist on "
                "jax (use parallel.fsdp and parallel.tensor)": p.pipeline_stages != 1,
                "compile: torch.compile is torch's; jax always compiles the step with XLA (remove it)": (
                    self.compile
                ),
                "model.family gpt: backend jax trains the llama family (set model.family: llama or a preset)": (
                    self.model.family != "llama"
                ),
            }
        broken = [reason for reason, refused in refusals.items() if refused]
        if broken:
            raise ValueError(f"backend {self.backend}: " + "; ".join(broken))
        return self

    @model_validator(mode="after")
    def _pipeline_fits(self) -> TrainJob:
        stages = self.parallel.pipeline_stages
        if stages == 1:
            return self
        refusals = {
            "the model's family must be llama": self.model.family != "llama",
            "tied embeddings cannot be split across stages (set model.tie_embeddings: false)": (
                self.model.tie_embeddings
            ),
            f"model.n_layers ({self.model.n_layers}) must be at least the stages": self.model.n_layers
            < stages,
            f"workers.num_workers ({self.workers.num_workers}) must be a multiple of the stages": (
                self.workers.num_workers % stages != 0
            ),
            f"DeepSpeed pipelines take ZeRO 0 or 1, not {self.zero.stage}": self.zero.stage > 1,
            "zero.offload_optimizer is not supported with pipeline stages": self.zero.offload_optimizer,
            "compile is not supported with pipeline stages": self.compile,
        }
        broken = [reason for reason, refused in refusals.items() if refused]
        if broken:
            raise ValueError(f"parallel.pipeline_stages {stages}: " + "; ".join(broken))
        return self

    @model_validator(mode="after")
    def _tensor_parallel_fits(self) -> TrainJob:
        """Layouts DeepSpeed AutoTP trains correctly (0.19.8; see README "Training"). A jax job's
        mesh axes are checked by the JAX trainer against its devices."""
        if self.backend != "deepspeed":
            return self
        tensor, stages, workers, m = (
            self.parallel.tensor,
            self.parallel.pipeline_stages,
            self.workers.num_workers,
            self.model,
        )
        if workers % (tensor * stages):
            raise ValueError(
                f"workers.num_workers ({workers}) != parallel.tensor ({tensor}) × parallel.pipeline_stages "
                f"({stages}) × data-parallel ranks: use a multiple of {tensor * stages} workers"
            )
        if tensor == 1:
            return self
        refusals = {
            "the model's family must be llama (AutoTP's splits name Llama's projections)": m.family
            != "llama",
            f"DeepSpeed's pipeline engine does not take AutoTP; use pipeline_stages 1, not {stages}": stages
            > 1,
            f"model.n_kv_heads ({m.kv_heads}) must be a multiple of it: each rank holds whole key/value "
            "heads": m.kv_heads % tensor != 0,
            f"model.n_heads ({m.n_heads}) must be a multiple of it": m.n_heads % tensor != 0,
            f"the MLP's hidden size ({m.ffn_size}) must be a multiple of it": m.ffn_size % tensor != 0,
            "compile is not supported with tensor parallelism": self.compile,
            "zero.offload_optimizer is not supported with tensor parallelism (untested)": (
                self.zero.offload_optimizer
            ),
        }
        broken = [reason for reason, refused in refusals.items() if refused]
        if broken:
            raise ValueError(f"parallel.tensor {tensor}: " + "; ".join(broken))
        return self

    @model_validator(mode="after")
    def _accumulation_from_global_batch(self) -> TrainJob:
        b, replicas = self.batch, self.data_parallel
        if b.global_batch_size is None:
            return self
        per_micro_step = b.micro_batch_size * replicas
        if b.global_batch_size % per_micro_step:
            raise ValueError(
                f"batch.global_batch_size {b.global_batch_size} does not divide across "
                f"{replicas} data-parallel ranks × micro_batch_size {b.micro_batch_size} = {per_micro_step}; "
                f"use a multiple of {per_micro_step} or change the workers or micro-batch"
            )
        accum = b.global_batch_size // per_micro_step
        if "grad_accum_steps" in b.model_fields_set and b.grad_accum_steps != accum:
            raise ValueError(
                f"batch.grad_accum_steps {b.grad_accum_steps} contradicts global_batch_size "
                f"{b.global_batch_size} ({accum} micro-steps on {replicas} data-parallel ranks); give only one"
            )
        return self.model_copy(update={"batch": b.model_copy(update={"grad_accum_steps": accum})})

    @property
    def data_parallel(self) -> int:
        """Data-parallel replicas: the workers over the tensor-parallel ranks and pipeline stages
        (deepspeed); on jax, tensor is a mesh axis over one process's devices, not over workers."""
        tensor = self.parallel.tensor if self.backend == "deepspeed" else 1
        return self.workers.num_workers // (tensor * self.parallel.pipeline_stages)

    @property
    def global_batch(self) -> int:
        """Samples per optimizer step over all workers."""
        return self.batch.micro_batch_size * self.batch.grad_accum_steps * self.data_parallel
