"""Byte-level BPE trained on the kept documents (HF tokenizers), and the encode stage.

Document text is plain text: a document that spells `<|endoftext|>` is encoded as those
characters, not as the special id (HF tokenizers' `encode_special_tokens`, which the saved
tokenizer.json does not keep, so every encoder here loads through `load_tokenizer`). The
only special ids in a shard are the end-of-text ids the pipeline appends, one per document.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.pipeline import TokenizerSpec
from strata.storage import Location

END_OF_TEXT = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], spec: TokenizerSpec, path: Location | Path) -> Tokenizer:
    """Train a byte-level BPE with one special token, `<|endoftext|>` (id 0), and save it
    (to a local path or object storage)."""
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
    Location.of(path).write_text(tokenizer.to_str(pretty=True))
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str) -> Tokenizer:
    """The saved tokenizer (a local path or an object-storage URL), set to encode
    special-token strings in text as plain text."""
    tokenizer = Tokenizer.from_str(Location(path).read_text())
    tokenizer.encode_special_tokens = True
    return tokenizer


class Tokenize:
    """map_batches stage: add `tokens` (uint16 ids, end-of-text appended) to kept rows."""

    def __init__(self, tokenizer_path: str) -> None:
        self.tokenizer = load_tokenizer(tokenizer_path)
        self.eot = self.tokenizer.token_to_id(END_OF_TEXT)

    def __call__(self, batch: Batch) -> Batch:
        keep = kept_mask(batch)
        texts = [str(t) for t, k in zip(batch["text"], keep, strict=True) if k]
        encoded = iter(self.tokenizer.encode_batch(texts))
        tokens = np.empty(len(keep), dtype=object)
        for i, k in enumerate(keep):
            ids = [*next(encoded).ids, self.eot] if k else []
            tokens[i] = np.asarray(ids, dtype=np.uint16)
        batch["tokens"] = tokens
        return batch


class CountTokens:
    """map_batches stage: add `token_count` for every row that still has text, kept or dropped,
    so the stats can say how many tokens survive each stage."""

    def __init__(self, tokenizer_path: str) -> None:
        self.tokenizer = load_tokenizer(tokenizer_path)

    def __call__(self, batch: Batch) -> Batch:
        texts = [str(t) for t in batch["text"]]
        counts = np.zeros(len(texts), dtype=np.int64)
        present = [i for i, t in enumerate(texts) if t]
        for i, encoding in zip(
            present, self.tokenizer.encode_batch([texts[i] for i in present]), strict=True
        ):
            counts[i] = len(encoding.ids)
        batch["token_count"] = counts
        return batch
