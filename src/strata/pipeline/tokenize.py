"""The job's tokenizer (a byte-level BPE trained on the kept documents, or the tokenizer.json
of `tokenizer.path`, both through HF tokenizers) and the encode stages.

Document text is plain text: a document that spells `<|endoftext|>` (or `</s>`) is encoded as
those characters, not as the special id (HF tokenizers' `encode_special_tokens`, which a saved
tokenizer.json does not keep, so every encoder here loads through `load_tokenizer`), and
without the tokenizer's post-processor (`add_special_tokens=False`: no BOS that a Llama-style
template would add). The only special ids in a shard are the end-of-text ids the pipeline
appends, one per document.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from strata.pipeline.documents import Batch, kept_mask, utf8_bytes
from strata.shards import numpy_dtype
from strata.spec.tokenizer import END_OF_TEXT, TokenizerFile, TokenizerSpec, describe_tokenizer
from strata.storage import Location

logger = logging.getLogger(__name__)

ENCODE_BYTES = 1 << 20  # UTF-8 bytes of text per encode_batch call


def train_tokenizer(texts: Iterable[str], spec: TokenizerSpec, path: Location | Path) -> bytes:
    """Train a byte-level BPE with one special token, `<|endoftext|>` (id 0), save it (to a
    local path or object storage) and return the saved tokenizer.json."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    data = tokenizer.to_str(pretty=True).encode("utf-8")
    Location.of(path).write_bytes(data)
    return data


def provide_tokenizer(spec: TokenizerSpec, sample: Iterable[str], path: Location | Path) -> TokenizerFile:
    """Put the job's tokenizer at `path` (the output's tokenizer.json): a copy of the file of
    `tokenizer.path`, or a BPE trained on `sample` (only then is the sample read)."""
    if spec.path is None:
        trained = describe_tokenizer(train_tokenizer(sample, spec, path), str(path))
        logger.info("trained a %d-token BPE", trained.vocab_size)
        return trained
    data = Path(spec.path).read_bytes()
    given = describe_tokenizer(data, spec.path, spec.eos_token)
    Location.of(path).write_bytes(data)
    logger.info(
        "tokenizing with %s: %d ids, end of text %s (id %d)",
        spec.path,
        given.vocab_size,
        given.eos_token,
        given.eos_id,
    )
    return given


def load_tokenizer(path: str) -> Tokenizer:
    """The saved tokenizer (a local path or an object-storage URL), set to encode
    special-token strings in text as plain text."""
    tokenizer = Tokenizer.from_str(Location(path).read_text())
    tokenizer.encode_special_tokens = True
    return tokenizer


class Encoder:
    """Base of the encode stages: the tokenizer of `tokenizer_path`, loaded again wherever the
    stage is unpickled. Ray ships a stage to its workers pickled, and a pickled Tokenizer loses
    `encode_special_tokens`: a document spelling `<|endoftext|>` would get the special id."""

    def __init__(self, tokenizer_path: str) -> None:
        self.tokenizer_path = tokenizer_path
        self.tokenizer = load_tokenizer(tokenizer_path)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "tokenizer"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.tokenizer = load_tokenizer(self.tokenizer_path)


class Tokenize(Encoder):
    """A numpy batch function: add `tokens` (ids of the shards' `dtype`, `eot_id` appended) and
    `text_bytes` (UTF-8 bytes of the text, for the stats' bytes per token) to kept rows.

    Texts are encoded ENCODE_BYTES of UTF-8 at a time (a longer text alone): a Hugging Face
    `Encoding` holds each token's string, offsets and masks beside its id, tens of bytes a
    token, so a whole batch of long documents at once held hundreds of MiB in a worker."""

    def __init__(self, tokenizer_path: str, *, eot_id: int, dtype: str) -> None:
        super().__init__(tokenizer_path)
        self.eot = eot_id
        self.dtype = numpy_dtype(dtype)

    def __call__(self, batch: Batch) -> Batch:
        keep = kept_mask(batch)
        texts = [str(t) for t, k in zip(batch["text"], keep, strict=True) if k]
        text_bytes = utf8_bytes(texts)
        encoded = iter(self._ids(texts, text_bytes))
        tokens = np.empty(len(keep), dtype=object)
        for i, k in enumerate(keep):
            tokens[i] = next(encoded) if k else np.empty(0, dtype=self.dtype)
        batch["tokens"] = tokens
        batch["text_bytes"] = np.zeros(len(keep), dtype=np.int64)
        batch["text_bytes"][keep] = text_bytes
        return batch

    def _ids(self, texts: list[str], text_bytes: np.ndarray[Any, Any]) -> Iterator[np.ndarray[Any, Any]]:
        """Each text's ids with the end-of-text id, encoded in runs of about ENCODE_BYTES."""
        run: list[str] = []
        size = 0
        for text, n in zip(texts, text_bytes, strict=True):
            if run and size + n > ENCODE_BYTES:
                yield from self._encoded(run)
                run, size = [], 0
            run.append(text)
            size += int(n)
        yield from self._encoded(run)

    def _encoded(self, texts: list[str]) -> Iterator[np.ndarray[Any, Any]]:
        for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False):
            yield np.asarray([*encoding.ids, self.eot], dtype=self.dtype)
