# The two set-up commands of a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs, pinned by locks/cpu.txt and, for the JAX
# backend's tests on the CPU, locks/jax-cpu.txt (once; again when pyproject.toml or a lock changes).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.strata-installed
# Extra pip options, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
# on a machine whose pip would otherwise pick torch's CUDA build.
PIP_ARGS ?=

LOCK := locks/cpu.txt
JAX_LOCK := locks/jax-cpu.txt

.PHONY: demo test test-unit lint install lock lock-cuda clean

$(STAMP): pyproject.toml $(LOCK) $(JAX_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_ARGS) --constraint $(LOCK) --constraint $(JAX_LOCK) -e '.[dev,jax]'
	# Compile DeepSpeed's CPU communication op once, not in every training worker
	# (with the venv's ninja, as the workers use: another ninja version rebuilds it).
	PATH=$(abspath $(BIN)):$$PATH DS_ACCELERATOR=cpu TORCH_EXTENSIONS_DIR=$(abspath $(VENV))/torch_extensions \
	  $(BIN)/python -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/strata demo

# Re-resolve pyproject.toml without the old pins and rewrite the lock (run after changing
# dependencies; then `make lock-cuda`).
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP_ARGS) -e '.[dev]'
	{ sed -n '/^#/p' $(LOCK); $(BIN)/pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)

# Derive locks/cuda.txt (the container image's) from locks/cpu.txt: same pins, torch's CUDA
# build and its CUDA wheels. Then re-render images/ with `strata images`.
lock-cuda: $(STAMP)
	$(BIN)/python scripts/lock_cuda.py

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks stacks
	$(BIN)/ruff format --check src tests scripts benchmarks stacks
	$(BIN)/mypy src
	$(BIN)/yamllint .
	$(BIN)/ansible-lint playbooks

test: lint
	$(BIN)/pytest

# The inner loop: the tests that start no Ray, no DeepSpeed ranks, no JAX device processes and
# no system services (the markers are in pyproject.toml; tests/conftest.py refuses an unmarked
# test that starts Ray, ranks or services).
test-unit: $(STAMP)
	$(BIN)/pytest -m "not integration and not ranks and not system and not jax"

clean:
	rm -rf $(VENV) runs .strata
