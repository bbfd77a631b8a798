"""Fixtures of the integration tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strata.pipeline.shards import TokenizedDocument, write_shards


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    """Token shards of 80 synthetic documents under tmp_path/shards (what train_job reads)."""
    docs = [(np.arange(start, start + 400) % 250 + 1).astype(np.uint16) for start in range(80)]
    write_shards(
        docs=[TokenizedDocument(d, "", "synthetic") for d in docs],
        out_dir=tmp_path / "shards",
        tokens_per_shard=8192,
        seed=3,
        vocab_size=256,
        eot_id=0,
    )
    return tmp_path / "shards"
