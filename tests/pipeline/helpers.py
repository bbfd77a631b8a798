"""The multilingual job shared by test_run.py and test_object_storage.py: real web pages in six
languages (WARC) and a folder of broken files, so that one run exercises language ID,
quarantine, MinHash dedup, balancing and several shards."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strata.spec.pipeline import PipelineJob

WARC = Path("data/multilingual/debian-reference.warc.gz")
LANGUAGES = ["de", "en", "es", "fr", "it", "ja"]


def broken_folder(root: Path) -> Path:
    folder = root / "broken"
    folder.mkdir()
    good = [json.dumps({"id": f"g{i}", "text": "short but fine"}) for i in range(20)]
    data = gzip.compress("\n".join(good).encode())
    (folder / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    (folder / "bad.jsonl").write_bytes(
        b'{"id": "x", "text": "caf\xe9"}\n{oops\n' + json.dumps({"id": "y"}).encode()
    )
    (folder / "notes.txt").write_bytes(b"\xff\xfe broken bytes")
    (folder / "table.parquet").write_bytes(b"PAR1 garbage")
    return folder


def multilingual_job(tmp_path: Path, **sections: object) -> PipelineJob:
    """The WARC and a broken folder made under `tmp_path`; outputs in `tmp_path/out`."""
    return PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "multilingual",
            "input": {"paths": [str(WARC), str(broken_folder(tmp_path))]},
            "language": {"min_score": 0.5},
            # The Debian Reference is technical prose: counted as datatrove counts words
            # (punctuation tokens included), its English pages hold ~60-75% alphabetic words.
            "quality": {"gopher": {"min_alpha_words_ratio": 0.55}},
            "tokenizer": {"vocab_size": 1024},
            "shards": {"tokens_per_shard": 4096},
            "output": {"dir": str(tmp_path / "out")},
            **sections,
        }
    )


# The balanced run of `multilingual_run` (tests/pipeline/conftest.py).
BALANCED = {"balance": {"enabled": True, "alpha": 0.3}}


@dataclass(frozen=True, slots=True, kw_only=True)
class MultilingualRun:
    """The balanced multilingual job run on local files: its inputs, outputs and stats."""

    job: PipelineJob
    broken: Path
    out: Path
    stats: dict[str, Any]
