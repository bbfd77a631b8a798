#!/usr/bin/env bash
# Strata's training step beside the plain-PyTorch anchor, in one run on one GPU.
# Usage: benchmarks/gpu_compare.sh ANCHOR_PY OUT_JSONL   (JSON lines, one per mode)
set -uo pipefail
anchor=$1 out=$2
bench() { PYTHONUNBUFFERED=1 python3 "$@" --steps 15 --warmup 4 2>&1 | grep '^{' | tee -a "$out"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out"
bench "$anchor" --modes torch_compile
bench benchmarks/gpu_train_step.py --stages 0 --precision autocast --compile --timeout 170
bench benchmarks/gpu_train_step.py --stages 0 --precision autocast --timeout 120
bench benchmarks/gpu_train_step.py --stages 2 --precision bf16 --compile --timeout 170
