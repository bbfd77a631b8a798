"""Export a finished training run: one consolidated file, or a Hugging Face checkpoint.

A run directory holds `model.pt` (the full state dict, written by the DeepSpeed trainer's
rank 0) or `model.npz` (the same names and shapes, written by the JAX trainer), and
`model-config.json`. The Hugging Face export builds `transformers.LlamaForCausalLM` with
the same shape, loads the weights (names map one to one, under `model.`) and saves it
with `save_pretrained`, so `AutoModelForCausalLM.from_pretrained(out)` loads it offline.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from strata.errors import JobError
from strata.spec.models import LlamaConfig, ModelConfig, config_from_description, describe
from strata.train.run_files import MODEL_CONFIG, WEIGHTS, WEIGHTS_NPZ

logger = logging.getLogger(__name__)


def load_run(run_dir: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The model config and weights of a training run's output directory (either trainer's)."""
    found = [p for p in (run_dir / WEIGHTS, run_dir / WEIGHTS_NPZ) if p.is_file()]
    # An output.dir reused by the other trainer holds both: the newer one is the last run's.
    weights = max(found, key=lambda p: p.stat().st_mtime) if found else run_dir / WEIGHTS
    config = run_dir / MODEL_CONFIG
    for path in (weights, config):
        if not path.is_file():
            raise JobError(f"{path}: missing; is {run_dir} the output directory of a finished training run?")
    cfg = config_from_description(json.loads(config.read_text(encoding="utf-8")))
    if weights.name == WEIGHTS_NPZ:
        with np.load(weights) as arrays:
            return cfg, {name: torch.from_numpy(arrays[name]) for name in arrays.files}
    return cfg, torch.load(weights, map_location="cpu", weights_only=True)


def export_consolidated(run_dir: Path, out: Path) -> Path:
    """One file with the config and the weights: {"config": {...}, "state_dict": {...}}."""
    cfg, state = load_run(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": describe(cfg), "state_dict": state}, out)
    return out


def hf_config(cfg: LlamaConfig) -> Any:
    from transformers import LlamaConfig as HfLlamaConfig

    return HfLlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.ffn_hidden,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.seq_len,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        tie_word_embeddings=cfg.tie_embeddings,
        hidden_act="silu",
    )


def export_hf(run_dir: Path, out: Path) -> Path:
    """A `transformers` checkpoint (config.json + safetensors) of a Llama-family run."""
    cfg, state = load_run(run_dir)
    if not isinstance(cfg, LlamaConfig):
        raise JobError(f"{run_dir}: family 'gpt' has no transformers architecture here; train family 'llama'")
    return save_hf(cfg, state, out)


def save_hf(cfg: LlamaConfig, state: dict[str, torch.Tensor], out: Path) -> Path:
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(hf_config(cfg))
    mapped = {(k if k.startswith("lm_head.") else f"model.{k}"): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not (cfg.tie_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise JobError(f"weights do not match the Llama shape: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    logger.info("exported %s to %s", type(model).__name__, out)
    return out
