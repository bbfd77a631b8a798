"""Tensor parallelism (DeepSpeed AutoTP) on four CPU ranks (gloo, fp32): two tensor-parallel
ranks × two data-parallel replicas train like the unsplit model at ZeRO 0-3, each rank holds
half of every split weight, a checkpoint resumes on the same layout (ZeRO 1 and 3), and the
weights gathered from ZeRO-3 partitions of the tensor shards export to a Hugging Face
checkpoint with the same logits; a tied head stays whole and trains the same. Layouts DeepSpeed does not train are refused by name before any worker starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from strata.errors import JobError
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.spec import TrainJob
from strata.spec.models import LlamaConfig, build_model_config
from strata.train.deepspeed_config import build_ds_config
from strata.train.launch import check_tensor_split
from tests.train.ranks import join_group, run_ranks

WORLD, STEPS, RESUME_AT, TIED_STEPS, VOCAB = 4, 16, 8, 6, 256
MODEL = {"family": "llama", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_kv_heads": 2, "ffn_hidden": 128,
         "seq_len": 32}  # fmt: skip
SPLIT = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


def job(
    *,
    tensor: int = 1,
    stage: int = 0,
    workers: int = WORLD,
    shards: str = "x",
    offload: bool = False,
    **model: Any,
) -> TrainJob:
    """A job whose global batch (8 samples a step, 2 micro-steps) is the same on any layout."""
    return TrainJob.model_validate({
        "kind": "train", "name": "tp", "data": {"shards": shards}, "output": {"dir": "o"}, "steps": STEPS,
        "model": {**MODEL, **model}, "zero": {"stage": stage, "offload_optimizer": offload},
        "parallel": {"tensor": tensor},
        "optimizer": {"lr": 1e-2, "warmup_steps": 2}, "workers": {"num_workers": workers},
        "batch": {"micro_batch_size": tensor, "global_batch_size": 8},
    })  # fmt: skip


def test_the_data_parallel_replicas_are_the_workers_over_the_tensor_ranks() -> None:
    tp = job(tensor=2)
    assert (tp.data_parallel, tp.batch.grad_accum_steps) == (2, 2)
    config = build_ds_config(tp, tp.data_parallel)
    assert config["train_batch_size"] == 8 and config["tensor_parallel"]["autotp_size"] == 2
    assert "tensor_parallel" not in build_ds_config(job(), 4)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"family": "gpt", "n_kv_heads": None, "ffn_hidden": None}, "family must be llama"),
        ({"offload": True, "stage": 2}, "offload_optimizer is not supported with tensor parallelism"),
        ({"n_kv_heads": 1}, r"n_kv_heads \(1\) must be a multiple of it"),
        ({"tensor": 4, "n_kv_heads": 2}, r"n_kv_heads \(2\) must be a multiple of it"),
        ({"ffn_hidden": 129}, r"hidden size \(129\) must be a multiple of it"),
        ({"workers": 6, "tensor": 4, "n_kv_heads": 4}, r"num_workers \(6\) != parallel.tensor \(4\) × "),
    ],
)
def test_layouts_autotp_does_not_train_are_refused_by_name(change: dict[str, Any], named: str) -> None:
    arguments = {"tensor": 2, **change}
    with pytest.raises(ValidationError, match=named):
        job(**arguments)


def test_tensor_parallelism_with_pipeline_stages_is_refused() -> None:
    spec = job(tensor=2).model_dump()
    spec["parallel"]["pipeline_stages"] = 2
    spec["workers"]["num_workers"] = 8
    with pytest.raises(ValidationError, match="pipeline engine does not take AutoTP"):
        TrainJob.model_validate(spec)


def test_a_vocabulary_the_head_cannot_split_is_refused_before_workers_start() -> None:
    tp = job(tensor=2)
    with pytest.raises(JobError, match=r"vocabulary \(255, x\) is not a multiple"):
        check_tensor_split(tp, build_model_config(tp.model, 255))
    check_tensor_split(tp, build_model_config(tp.model, VOCAB))


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    # Counting sequences with a random start and stride: a pattern the model learns in a few steps.
    docs = [
        (rng.integers(0, VOCAB) + rng.integers(1, 4) * np.arange(rng.integers(40, 300))) % (VOCAB - 1) + 1
        for _ in range(80)
    ]
    out = tmp_path_factory.mktemp("tp") / "shards"
    write_shards(docs=[TokenizedDocument(d.astype(np.uint16), "", "synthetic") for d in docs], out_dir=out,
                 tokens_per_shard=4096, seed=3, vocab_size=VOCAB, eot_id=0)  # fmt: skip
    return out


def _train(spec: TrainJob, samples: Any, engine: Any, start: int, stop: int) -> list[float]:
    """Steps start … stop - 1 as the Ray Train loop runs them; the mean loss of each."""
    import torch.distributed as dist

    from strata.train.step import data_parallel_rank, train_step

    replica, replicas = data_parallel_rank(engine)
    losses = []
    for step in range(start, stop):
        loss_sum = train_step(engine, samples, step=step, rank=replica, world_size=replicas, batch=spec.batch)
        dist.all_reduce(loss_sum)
        losses.append(loss_sum.item() / (dist.get_world_size() * spec.batch.grad_accum_steps))
    return losses


def _train_tied(tensor: int, samples: Any, shards: Path, world: int) -> dict[str, Any]:
    """A tied model's losses and the shape of its head on this rank (DeepSpeed keeps ties whole)."""
    from strata.train.step import build_engine

    tied = job(tensor=tensor, stage=1, shards=str(shards), tie_embeddings=True)
    engine = build_engine(tied, build_model_config(tied.model, VOCAB), world)
    losses = _train(tied, samples, engine, 0, TIED_STEPS)
    return {
        f"tied-tensor{tensor}": losses,
        f"tied-tensor{tensor}-head": tuple(engine.module.lm_head.weight.shape),
    }


def _rank(rank: int, world: int, port: int, shards: Path, checkpoints: Path) -> dict[str, Any]:
    """On every rank: the unsplit model (tensor 1, four replicas), then tensor 2 × two
    replicas at ZeRO 0-3; at ZeRO 1 and 3 also a resume from the checkpoint of RESUME_AT;
    then a tied model on both layouts. One launch: starting four ranks costs most of the time."""
    join_group(rank, world, port)
    from strata.train.checkpoints import CHECKPOINT_TAG, gather_weights
    from strata.train.step import build_engine, configure_runtime, open_samples

    configure_runtime(job())
    import deepspeed
    import torch
    import torch.distributed as dist

    deepspeed.init_distributed(dist_backend="gloo")
    out: dict[str, Any] = {}
    whole = job(shards=str(shards))
    samples, cfg = open_samples(whole)
    assert isinstance(cfg, LlamaConfig)
    engine = build_engine(whole, cfg, world)
    out["whole"] = _train(whole, samples, engine, 0, STEPS)
    out["whole_weights"] = gather_weights(engine, cfg)
    # Every unsplit engine first: once DeepSpeed made its tensor groups, they stay for the process.
    out.update(_train_tied(1, samples, shards, world))
    for stage in (0, 1, 2, 3):
        spec = job(tensor=2, stage=stage, shards=str(shards))
        engine = build_engine(spec, cfg, world)
        if stage == 0:
            out["shapes"] = {
                n: tuple(p.shape)
                for n, p in engine.module.named_parameters()
                if "layers.0." in n or "lm_head" in n
            }
        if stage in (1, 3):
            losses = _train(spec, samples, engine, 0, RESUME_AT)
            engine.save_checkpoint(
                str(checkpoints / str(stage)), tag=CHECKPOINT_TAG, client_state={"step": RESUME_AT}
            )
            losses += _train(spec, samples, engine, RESUME_AT, STEPS)
            resumed = build_engine(spec, cfg, world)
            _, client = resumed.load_checkpoint(str(checkpoints / str(stage)), tag=CHECKPOINT_TAG)
            out[f"resumed{stage}"] = _train(spec, samples, resumed, client["step"], STEPS)
        else:
            losses = _train(spec, samples, engine, 0, STEPS)
        out[f"tensor-zero{stage}"] = losses
    idx = torch.randint(0, VOCAB, (2, cfg.seq_len), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out["logits"] = engine.module.logits(idx)  # tensor 2 at ZeRO 3: a collective
    out["idx"], out["weights"] = idx, gather_weights(engine, cfg)
    out.update(_train_tied(2, samples, shards, world))
    # By value: a tensor sent through the queue would point into this process's memory.
    for key in ("whole_weights", "weights"):
        out[key] = {k: v.numpy() for k, v in out[key].items()} if out[key] is not None else None
    out["logits"], out["idx"] = out["logits"].numpy(), out["idx"].numpy()
    dist.barrier()
    dist.destroy_process_group()
    return out


@pytest.mark.ranks  # gloo rank processes (tests/train/ranks.py)
def test_two_tensor_ranks_by_two_replicas_train_resume_and_export_like_the_whole_model(
    shards: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from strata.train.export import save_hf

    ranks = run_ranks(_rank, WORLD, shards, tmp_path / "checkpoints")
    first = ranks[0]
    assert first["whole"][-1] < first["whole"][0] - 0.1  # it learned
    for stage in (0, 1, 2, 3):
        assert first[f"tensor-zero{stage}"] == pytest.approx(first["whole"], abs=1e-5), stage
    for stage in (1, 3):
        assert first[f"resumed{stage}"] == pytest.approx(first[f"tensor-zero{stage}"][RESUME_AT:], abs=1e-6)
    whole = first["whole_weights"]
    for name, shape in first["shapes"].items():  # each rank holds half of every split weight
        full = tuple(whole[name].shape)
        split = any(part in name for part in SPLIT)
        dim = 1 if ("o_proj" in name or "down_proj" in name) else 0
        expected = tuple(size // 2 if split and d == dim else size for d, size in enumerate(full))
        assert shape == expected, name
    assert first["tied-tensor2"] == pytest.approx(first["tied-tensor1"], abs=1e-5)
    assert first["tied-tensor2-head"] == first["tied-tensor1-head"] == (VOCAB, MODEL["d_model"])
    gathered = first["weights"]
    assert gathered.keys() == whole.keys()
    assert all(gathered[k].shape == whole[k].shape for k in whole)
    assert all(rank["weights"] is None for rank in ranks[1:])  # rank 0 alone receives them
    cfg = build_model_config(job().model, VOCAB)
    assert isinstance(cfg, LlamaConfig)
    save_hf(cfg, {k: torch.from_numpy(v) for k, v in gathered.items()}, tmp_path / "hf")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        theirs = loaded(torch.from_numpy(first["idx"])).logits
    ours = torch.from_numpy(first["logits"])
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
