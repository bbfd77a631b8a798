#!/usr/bin/env bash
# Strata's training step beside the plain-PyTorch anchor, in one run on one GPU: the
# DeepSpeed trainer (tensor parallelism off: one GPU) and the JAX trainer.
# Usage: benchmarks/gpu_compare.sh ANCHOR_PY OUT_JSONL   (JSON lines, one per mode; the
# whole output of every mode goes to OUT_JSONL's name with .log)
set -uo pipefail
anchor=$1 out=$2
bench() { PYTHONUNBUFFERED=1 python3 "$@" --steps 15 --warmup 4 2>&1 | tee -a "${out%.jsonl}.log" | grep '^{' | tee -a "$out"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out"
bench "$anchor" --modes torch_compile
bench benchmarks/gpu_train_step.py --stages 0 --precision autocast --compile --timeout 170
bench benchmarks/gpu_train_step.py --stages 0 --precision autocast --timeout 120
bench benchmarks/gpu_train_step.py --stages 2 --precision bf16 --compile --timeout 170
bench benchmarks/jax_train_step.py --model llama-1b --micro-batch 4 --instance p5en.48xlarge
