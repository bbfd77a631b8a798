"""The training data format: the index layout byte for byte, the dtype chosen by vocabulary
size (uint16 / int32 with Megatron's codes), reading refusing what does not match, and
Megatron-Core's own IndexedDataset reading what is written."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from strata.errors import JobError
from strata.shards import (
    TokenizedDocument,
    index_bytes,
    read_index,
    read_tokens,
    token_dtype,
    write_manifest,
    write_shard,
)


def test_index_layout_is_megatrons() -> None:
    data = index_bytes(np.array([3, 5]))
    assert data[:9] == b"MMIDIDX\x00\x00"
    assert struct.unpack("<QBQQ", data[9:34]) == (1, 8, 2, 3)  # version, uint16 code, sequences, docs+1
    assert np.frombuffer(data, "<i4", 2, 34).tolist() == [3, 5]  # lengths
    assert np.frombuffer(data, "<i8", 2, 42).tolist() == [0, 6]  # byte offsets
    assert np.frombuffer(data, "<i8", 3, 58).tolist() == [0, 1, 2]  # document indices
    assert len(data) == 58 + 24


def test_int32_index_has_code_4_and_four_byte_offsets() -> None:
    data = index_bytes(np.array([3, 5]), "int32")
    assert struct.unpack("<QBQQ", data[9:34]) == (1, 4, 2, 3)
    assert np.frombuffer(data, "<i8", 2, 42).tolist() == [0, 12]


def test_dtype_follows_the_vocabulary() -> None:
    assert token_dtype(50_304) == token_dtype(65_535) == "uint16"
    assert token_dtype(65_536) == token_dtype(128_256) == "int32"


def write(out: Path, docs: list[TokenizedDocument], vocab_size: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    shards = [
        write_shard(out, 0, docs[:2], token_dtype(vocab_size)),
        write_shard(out, 1, docs[2:], token_dtype(vocab_size)),
    ]
    return write_manifest(out, shards, vocab_size=vocab_size, eot_id=0, seed=0)


@pytest.mark.parametrize(("vocab_size", "dtype", "code"), [(1000, "uint16", 8), (128_256, "int32", 4)])
def test_every_token_round_trips(tmp_path: Path, vocab_size: int, dtype: str, code: int) -> None:
    rng = np.random.default_rng(0)
    docs = [TokenizedDocument(rng.integers(0, vocab_size, size=n), "en", "web") for n in (7, 30, 12, 1)]
    manifest = write(tmp_path, docs, vocab_size)
    assert manifest["dtype"] == dtype
    index = read_index(tmp_path / "shard_00001.idx")
    assert index.dtype == dtype and index.lengths.tolist() == [12, 1]
    assert (tmp_path / "shard_00001.idx").read_bytes()[17] == code
    assert index.pointers.tolist() == [0, 12 * np.dtype(dtype).itemsize]
    read_manifest, tokens = read_tokens(tmp_path)
    assert read_manifest == manifest
    assert tokens.tolist() == np.concatenate([d.tokens for d in docs]).tolist()
    if vocab_size > 65_535:
        assert tokens.max() > 65_535  # ids a uint16 would have wrapped


def test_reading_refuses_a_corrupt_or_missing_file(tmp_path: Path) -> None:
    docs = [TokenizedDocument(np.arange(1, 9 + i), "en", "web") for i in range(4)]
    write(tmp_path, docs, 1000)
    with pytest.raises(JobError, match="run the pipeline job"):
        read_tokens(tmp_path / "nowhere")
    (tmp_path / "shard_00001.bin").write_bytes(b"\x00\x00")
    with pytest.raises(JobError, match=r"shard_00001\.bin: checksum does not match"):
        read_tokens(tmp_path)
    write(tmp_path, docs, 1000)
    index = tmp_path / "shard_00000.idx"
    index.write_bytes(b"not an index")
    with pytest.raises(JobError, match=r"shard_00000.idx: not a Megatron index"):
        read_tokens(tmp_path)
    read_tokens(tmp_path, verify=False)  # workers skip what the launcher checked
    index.write_bytes(index_bytes(np.array([9, 10]), "int32"))
    with pytest.raises(JobError, match=r"index holds int32 tokens, the manifest says uint16"):
        read_tokens(tmp_path)
    index.unlink()
    with pytest.raises(JobError, match=r"index listed in the manifest is missing"):
        read_tokens(tmp_path)


@pytest.mark.filterwarnings(
    "ignore:Transformer Engine and Apex are not installed", "ignore::DeprecationWarning"
)
@pytest.mark.parametrize("vocab_size", [1000, 100_277])
def test_megatron_cores_indexed_dataset_reads_the_shards(tmp_path: Path, vocab_size: int) -> None:
    """Megatron-Core's own reader (megatron-core 0.16.1, the last release for Python 3.11)."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    rng = np.random.default_rng(1)
    docs = [TokenizedDocument(rng.integers(0, vocab_size, size=n), "en", "web") for n in (7, 30, 12, 1)]
    write(tmp_path, docs, vocab_size)
    read = []
    for shard in ("shard_00000", "shard_00001"):
        dataset = IndexedDataset(str(tmp_path / shard))
        assert dataset.index.dtype == np.dtype(token_dtype(vocab_size))
        read += [dataset[i].tolist() for i in range(len(dataset))]
    assert read == [d.tokens.tolist() for d in docs]
