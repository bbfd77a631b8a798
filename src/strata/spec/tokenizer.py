"""The pipeline's tokenizer: a byte-level BPE trained on the kept documents, or an existing
Hugging Face `tokenizer.json` (`path`), with which the job trains nothing.

A tokenizer.json does not say which token ends a document (transformers keeps that in
tokenizer_config.json), so `eos_token` names it, or else the first of END_OF_TEXT_TOKENS that
the vocabulary holds is taken: `<|endoftext|>` (GPT-2, tiktoken's cl100k/o200k, Qwen, the
trained BPE), `<|end_of_text|>` (Llama 3), `</s>` (Llama 2, Mistral, T5), `<eos>` (Gemma).
The file is checked when the job is validated: it must exist, load with HF `tokenizers` and
hold the end-of-text token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from strata.spec.base import Section

END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_TOKENS = (END_OF_TEXT, "<|end_of_text|>", "</s>", "<eos>")
TRAINING_KEYS = ("vocab_size", "min_frequency", "train_sample_bytes")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenizerFile:
    """What the shards record of a tokenizer.json: its end-of-text token and id, its
    vocabulary size and the SHA-256 of its bytes.

    `vocab_size` is the largest id + 1, not the token count: ids may leave gaps (tiktoken's
    cl100k_base has 100,261 tokens with ids up to 100,276), and the model embeds every id.
    """

    eos_token: str
    eos_id: int
    vocab_size: int
    sha256: str


def load_tokenizer_file(path: str, eos_token: str | None = None) -> TokenizerFile:
    """Load a local tokenizer.json and find its end-of-text token (`eos_token`, or the first of
    END_OF_TEXT_TOKENS it holds); ValueError names `tokenizer.path`, the file and the fix."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"tokenizer.path: {path} is not a file (paths are relative to the repo root)")
    return describe_tokenizer(file.read_bytes(), path, eos_token)


def describe_tokenizer(data: bytes, path: str, eos_token: str | None = None) -> TokenizerFile:
    """The TokenizerFile of a tokenizer.json's bytes read from `path` (named in errors, as in
    load_tokenizer_file)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as error:  # tokenizers raises a plain Exception for every parse failure
        raise ValueError(
            f"tokenizer.path: {path} is not a Hugging Face tokenizer.json ({error}); a sentencepiece "
            ".model or a tiktoken file must be converted first (transformers' converters write one)"
        ) from None
    wanted = (eos_token,) if eos_token is not None else END_OF_TEXT_TOKENS
    found = next(((t, i) for t in wanted if (i := tokenizer.token_to_id(t)) is not None), None)
    if found is None:
        if eos_token is not None:
            raise ValueError(
                f"tokenizer.path: {path} has no token {eos_token!r} (tokenizer.eos_token); "
                "name the token of this file that ends a document"
            )
        raise ValueError(
            f"tokenizer.path: {path} holds none of {', '.join(wanted)} (no end-of-text token to end "
            "each document); name the token that ends a document in tokenizer.eos_token"
        )
    return TokenizerFile(
        eos_token=found[0],
        eos_id=found[1],
        vocab_size=max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1,
        sha256=hashlib.sha256(data).hexdigest(),
    )


class TokenizerSpec(Section):
    """The tokenizer: a byte-level BPE trained on the kept documents with HF tokenizers, or the
    tokenizer.json at `path`. The end of every document gets the end-of-text id."""

    path: str | None = Field(
        None,
        description=(
            "An existing HF tokenizer.json to tokenize with (nothing is trained; the vocabulary is "
            "the file's), relative to the repo root; None: train a byte-level BPE."
        ),
    )
    eos_token: str | None = Field(
        None,
        description=(
            "With path: the token appended to each document; None: the first of <|endoftext|>, "
            "<|end_of_text|>, </s>, <eos> in the vocabulary."
        ),
    )
    vocab_size: int = Field(8192, ge=257, le=65535, description="Trained BPE: vocabulary size (fits uint16).")
    min_frequency: int = Field(2, ge=1, description="Trained BPE: min pair frequency for a merge.")
    train_sample_bytes: int = Field(
        100_000_000,
        ge=1,
        description=(
            "Trained BPE: at most this many bytes of kept text train it (a seeded sample by hash of id)."
        ),
    )

    @model_validator(mode="after")
    def _file_or_training(self) -> TokenizerSpec:
        """A given file must load and end documents; the training keys would be ignored with it."""
        if self.path is None:
            if self.eos_token is not None:
                raise ValueError(
                    f"tokenizer.eos_token names the end-of-text token of tokenizer.path; the trained BPE's "
                    f"is {END_OF_TEXT}: set tokenizer.path or remove tokenizer.eos_token"
                )
            return self
        training = [f"tokenizer.{key}" for key in TRAINING_KEYS if key in self.model_fields_set]
        if training:
            keys = ", ".join(training)
            raise ValueError(
                f"{keys}: for the trained BPE only; with tokenizer.path ({self.path}) nothing is "
                f"trained and the vocabulary is the file's: remove {keys}"
            )
        load_tokenizer_file(self.path, self.eos_token)
        return self
