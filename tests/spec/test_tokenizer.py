"""`tokenizer.path`: a file that is missing, is not a tokenizer or has no end-of-text token is
refused when the job is loaded (before Ray or any stage starts), naming the key and the file;
so are the training keys beside it. The end-of-text token is found by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from strata.errors import SpecError
from strata.spec import PipelineJob, load_spec
from strata.spec.tokenizer import load_tokenizer_file

JOB = """
kind: pipeline
name: p
input: {{paths: [data/demo/corpus.jsonl]}}
tokenizer: {tokenizer}
output: {{dir: runs/p}}
"""


def word_tokenizer(path: Path, vocab: dict[str, int]) -> Path:
    """A word-level tokenizer.json with exactly these ids (gaps allowed)."""
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, **vocab}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(path))
    return path


def refused(write_yaml, tokenizer: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write_yaml(JOB.format(tokenizer=tokenizer)))
    return str(info.value)


def test_a_missing_file_is_refused_naming_the_key_and_the_file(write_yaml, tmp_path: Path) -> None:
    message = refused(write_yaml, f"{{path: {tmp_path}/nowhere.json}}")
    assert "tokenizer.path" in message and f"{tmp_path}/nowhere.json is not a file" in message
    message = refused(write_yaml, f"{{path: {tmp_path}}}")  # a folder
    assert f"tokenizer.path: {tmp_path} is not a file" in message


@pytest.mark.parametrize("content", [b'{"version": "1.0", "vocab": {"a": 0}}', b"not json", b"\xff\xfe\x00"])
def test_a_file_that_is_not_a_tokenizer_is_refused(write_yaml, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_bytes(content)
    message = refused(write_yaml, f"{{path: {path}}}")
    assert f"tokenizer.path: {path} is not a Hugging Face tokenizer.json" in message


def test_a_tokenizer_without_an_end_of_text_token_is_refused(write_yaml, tmp_path: Path) -> None:
    path = word_tokenizer(tmp_path / "tokenizer.json", {"a": 1, "<|im_end|>": 2})
    message = refused(write_yaml, f"{{path: {path}}}")
    assert f"tokenizer.path: {path} holds none of <|endoftext|>, <|end_of_text|>, </s>, <eos>" in message
    assert "tokenizer.eos_token" in message
    message = refused(write_yaml, f"{{path: {path}, eos_token: '<eot>'}}")
    assert f"tokenizer.path: {path} has no token '<eot>' (tokenizer.eos_token)" in message


@pytest.mark.parametrize(
    ("key", "value"), [("vocab_size", 1024), ("min_frequency", 3), ("train_sample_bytes", 9)]
)
def test_training_keys_beside_a_path_are_refused(write_yaml, tmp_path: Path, key: str, value: int) -> None:
    path = word_tokenizer(tmp_path / "tokenizer.json", {"</s>": 1})
    message = refused(write_yaml, f"{{path: {path}, {key}: {value}}}")
    assert f"tokenizer.{key}: for the trained BPE only; with tokenizer.path ({path})" in message
    assert f"remove tokenizer.{key}" in message


def test_an_eos_token_without_a_path_is_refused(write_yaml) -> None:
    message = refused(write_yaml, "{eos_token: '</s>'}")
    assert "tokenizer.eos_token names the end-of-text token of tokenizer.path" in message


def test_the_end_of_text_token_is_the_named_one_or_the_first_known(write_yaml, tmp_path: Path) -> None:
    both = word_tokenizer(tmp_path / "both.json", {"</s>": 1, "<|endoftext|>": 2, "<|im_end|>": 3})
    found = load_tokenizer_file(str(both))
    assert (found.eos_token, found.eos_id) == ("<|endoftext|>", 2)
    assert load_tokenizer_file(str(both), "<|im_end|>").eos_id == 3
    llama = word_tokenizer(tmp_path / "llama.json", {"<s>": 1, "</s>": 2})
    assert load_tokenizer_file(str(llama)).eos_token == "</s>"
    job = load_spec(write_yaml(JOB.format(tokenizer=f"{{path: {both}, eos_token: '<|im_end|>'}}")))
    assert isinstance(job, PipelineJob) and job.tokenizer.path == str(both)


def test_the_vocabulary_size_is_the_largest_id_plus_one(tmp_path: Path) -> None:
    path = word_tokenizer(tmp_path / "tokenizer.json", {"a": 1, "<|endoftext|>": 100_257})
    found = load_tokenizer_file(str(path))
    assert found.vocab_size == 100_258  # three tokens, ids up to 100,257: the model embeds every id
    assert len(found.sha256) == 64
