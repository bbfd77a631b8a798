"""The JAX Llama on one CPU device: the torch model's names, shapes and logits; the torch
schedule; sharding rules; and the jax backend's refusals in the job file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")

from jax.sharding import AbstractMesh, Mesh, PartitionSpec  # noqa: E402

from strata.errors import JobError  # noqa: E402
from strata.pipeline.shards import TokenizedDocument, write_shards  # noqa: E402
from strata.spec.models import LlamaConfig  # noqa: E402
from strata.spec.train import OptimizerSpec, TrainJob  # noqa: E402
from strata.train.jax.model import check_params, logits, param_shapes  # noqa: E402
from strata.train.jax.optim import lr_schedule  # noqa: E402
from strata.train.jax.sharding import build_mesh, check_batch, param_spec  # noqa: E402
from strata.train.jax.trainer import train  # noqa: E402
from strata.train.llama import Llama  # noqa: E402
from strata.train.schedule import lr_ratio  # noqa: E402

CFG = LlamaConfig(vocab_size=97, seq_len=16, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=48)


@pytest.mark.parametrize("tie", [False, True])
def test_the_torch_state_dict_loads_and_gives_the_same_logits(tie: bool) -> None:
    cfg = _config(tie)
    torch.manual_seed(1)
    model = Llama(cfg)
    state = {n: t.detach().numpy() for n, t in model.state_dict().items()}
    if tie:
        del state["lm_head.weight"]  # the same tensor as embed_tokens.weight
    assert {n: tuple(a.shape) for n, a in state.items()} == param_shapes(cfg)
    check_params(cfg, state)
    idx = np.random.default_rng(0).integers(0, cfg.vocab_size, size=(3, cfg.seq_len))
    with torch.no_grad():
        expected = model.logits(torch.from_numpy(idx)).numpy()
    got = logits(cfg, {n: jax.numpy.asarray(a) for n, a in state.items()}, jax.numpy.asarray(idx))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-5)


def _config(tie: bool) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=97, seq_len=16, n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, ffn_hidden=48,
        tie_embeddings=tie,
    )  # fmt: skip


def test_parameters_of_another_shape_are_named() -> None:
    state = {n: np.zeros(s, np.float32) for n, s in param_shapes(CFG).items()}
    state["layers.1.mlp.up_proj.weight"] = np.zeros((47, 32), np.float32)
    del state["norm.weight"]
    with pytest.raises(
        ValueError, match=r"up_proj.weight: \(47, 32\) != \(48, 32\).*missing \['norm.weight'\]"
    ):
        check_params(CFG, state)


def test_the_schedule_is_the_torch_paths() -> None:
    spec = OptimizerSpec(lr=2e-3, warmup_steps=4, min_lr_ratio=0.1)
    schedule = lr_schedule(spec, total_steps=20)
    expected = [2e-3 * lr_ratio(s, warmup_steps=4, total_steps=20, min_ratio=0.1) for s in range(25)]
    np.testing.assert_allclose([float(schedule(s)) for s in range(25)], expected, rtol=1e-6)


def test_matrices_split_megatron_style_and_odd_sizes_stay_whole() -> None:
    mesh = Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), ("data", "fsdp", "tensor"))
    assert param_spec("layers.0.self_attn.q_proj.weight", (64, 32), mesh) == PartitionSpec("tensor", "fsdp")
    assert param_spec("layers.0.mlp.down_proj.weight", (32, 48), mesh) == PartitionSpec("fsdp", "tensor")
    assert param_spec("norm.weight", (32,), mesh) == PartitionSpec()
    big = AbstractMesh((1, 2, 2), ("data", "fsdp", "tensor"))
    # GPT-2's odd vocabulary stays whole across "tensor".
    assert param_spec("lm_head.weight", (50257, 64), big) == PartitionSpec(None, "fsdp")


JOB = {"kind": "train", "name": "t", "steps": 2, "backend": "jax", "data": {"shards": "s"},
       "model": {"family": "llama"}, "output": {"dir": "o"}}  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "refusal"),
    [
        ({"zero": {"stage": 3}}, "zero.stage 3: ZeRO is DeepSpeed's"),
        ({"parallel": {"pipeline_stages": 2}}, "parallel.pipeline_stages 2: DeepSpeed pipeline stages"),
        ({"compile": True}, "compile: torch.compile is torch's"),
        ({"model": {"family": "gpt"}}, "model.family gpt: backend jax trains the llama family"),
        ({"backend": "deepspeed", "parallel": {"fsdp": 2}}, "parallel.fsdp 2: fsdp is a jax mesh axis"),
    ],
)
def test_options_of_the_other_backend_are_refused_by_name(extra: dict[str, object], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        TrainJob.model_validate({**JOB, **extra})


def test_a_jax_job_takes_tensor_and_fsdp_and_a_zero_stage_0() -> None:
    job = TrainJob.model_validate({**JOB, "parallel": {"fsdp": 2, "tensor": 2}, "zero": {"stage": 0}})
    assert (job.parallel.fsdp, job.parallel.tensor) == (2, 2)


def test_a_mesh_or_batch_that_does_not_divide_is_refused(tmp_path: Path) -> None:
    job = TrainJob.model_validate(
        {**JOB, "parallel": {"fsdp": 2}, "batch": {"micro_batch_size": 3}, "workers": {"num_workers": 1}}
    )
    with pytest.raises(
        JobError, match=r"parallel.fsdp \(2\) × parallel.tensor \(1\) = 2 does not divide the 1"
    ):
        build_mesh(job, jax.devices()[:1])
    with pytest.raises(
        JobError, match=r"3 samples per micro-step .* do not divide over data \(2\) × fsdp \(2\)"
    ):
        check_batch(job, AbstractMesh((2, 2, 1), ("data", "fsdp", "tensor")))


def test_missing_shards_are_refused_before_anything_compiles(tmp_path: Path) -> None:
    job = TrainJob.model_validate(
        {**JOB, "data": {"shards": str(tmp_path)}, "output": {"dir": str(tmp_path)}}
    )
    with pytest.raises(JobError, match=r"no manifest\.json; run the pipeline job"):
        train(job)


def test_a_corrupt_shard_is_refused_before_anything_compiles(tmp_path: Path) -> None:
    docs = [np.arange(1, 300, dtype=np.uint16) for _ in range(8)]
    write_shards(docs=[TokenizedDocument(d, "", "s") for d in docs], out_dir=tmp_path / "shards",
                 tokens_per_shard=1024, seed=0, vocab_size=500, eot_id=0)  # fmt: skip
    shard = sorted((tmp_path / "shards").glob("*.bin"))[0]
    data = bytearray(shard.read_bytes())
    data[10] ^= 0xFF
    shard.write_bytes(bytes(data))
    job = TrainJob.model_validate(
        {**JOB, "data": {"shards": str(tmp_path / "shards")}, "output": {"dir": str(tmp_path / "out")}}
    )
    with pytest.raises(
        JobError, match=rf"{shard.name}: checksum does not match the manifest; the shard is corrupt"
    ):
        train(job)


def test_bf16_compute_stays_near_fp32() -> None:
    """The TPU setting (bf16 matmuls, fp32 weights and loss) on the CPU."""
    cfg = _config(False)
    torch.manual_seed(1)
    state = {n: jax.numpy.asarray(t.detach().numpy()) for n, t in Llama(cfg).state_dict().items()}
    idx = jax.numpy.asarray(np.random.default_rng(0).integers(0, cfg.vocab_size, size=(2, cfg.seq_len)))
    fp32 = logits(cfg, state, idx)
    bf16 = logits(cfg, state, idx, compute_dtype=jax.numpy.bfloat16, recompute=True)
    assert bf16.dtype == jax.numpy.bfloat16
    np.testing.assert_allclose(np.asarray(bf16, np.float32), np.asarray(fp32), rtol=0, atol=0.02)
