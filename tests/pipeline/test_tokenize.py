"""Document text is encoded as plain text: a document that spells `<|endoftext|>` keeps its
characters, and the only end-of-text ids in a shard are the one per document the pipeline adds
(no BOS from a tokenizer's template either); ids above 65,535 stay whole in int32."""

from __future__ import annotations

import pickle
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from strata.pipeline.documents import normalize_text
from strata.pipeline.shards import TokenizedDocument, write_shards
from strata.pipeline.stats import _kept_count_columns
from strata.pipeline.tokenize import Tokenize, load_tokenizer, train_tokenizer
from strata.spec.tokenizer import END_OF_TEXT, TokenizerSpec

TEXTS = [
    "The model emits <|endoftext|> at the end of every document.",
    "Plain prose about tokenizers and shards.",
    f"{END_OF_TEXT}{END_OF_TEXT} twice, then <|endoftext| and <|another|> token-like strings.",
]


@cache
def tokenizer_file() -> str:
    path = Path(tempfile.mkdtemp(prefix="strata-tokenizer-")) / "tokenizer.json"
    train_tokenizer(TEXTS * 20, TokenizerSpec(vocab_size=300, min_frequency=2), path)
    return str(path)


def test_shards_hold_one_end_of_text_per_document_and_decode_to_the_text(tmp_path: Path) -> None:
    path = tokenizer_file()
    batch = {
        "status": np.array(["", "", "", "dropped_x"], object),
        "text": np.array([*TEXTS, "gone"], object),
    }
    tokens = Tokenize(path, eot_id=0, dtype="uint16")(dict(batch))["tokens"]
    manifest = write_shards(
        docs=[TokenizedDocument(t, "en", "s") for t in tokens[:3]],
        out_dir=tmp_path / "shards",
        tokens_per_shard=1024,
        seed=0,
        vocab_size=300,
        eot_id=0,
    )
    ids = np.concatenate(
        [np.fromfile(tmp_path / "shards" / s["bin"], dtype="<u2") for s in manifest["shards"]]
    )
    eot = Tokenizer.from_file(path).token_to_id(END_OF_TEXT)
    assert int((ids == eot).sum()) == manifest["total_documents"] == 3
    ends = np.flatnonzero(ids == eot)
    decoded = {
        load_tokenizer(path).decode(ids[a + 1 : b].tolist())
        for a, b in zip([-1, *ends[:-1]], ends, strict=True)
    }
    assert decoded == set(TEXTS)
    # The stats' bytes per token read each kept row's UTF-8 bytes; a dropped row has none.
    text_bytes = Tokenize(path, eot_id=0, dtype="uint16")(dict(batch))["text_bytes"]
    assert text_bytes.tolist() == [len(t.encode("utf-8")) for t in TEXTS] + [0]


@given(text=st.text(max_size=200), cut=st.integers(0, 200))
@settings(max_examples=150, deadline=None)
def test_any_text_encodes_without_special_ids_and_decodes_to_itself(text: str, cut: int) -> None:
    text = normalize_text(text[:cut] + END_OF_TEXT + text[cut:])
    tokenizer = load_tokenizer(tokenizer_file())
    ids = tokenizer.encode(text).ids
    assert tokenizer.token_to_id(END_OF_TEXT) not in ids
    assert tokenizer.decode(ids) == text


def test_ids_above_uint16_stay_whole_and_no_template_bos_is_added(tmp_path: Path) -> None:
    vocab = {"[UNK]": 0, "<s>": 1, "big": 70_000, "</s>": 70_001}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    path = str(tmp_path / "tokenizer.json")
    tokenizer.save(path)
    batch = {"status": np.array(["", ""], object), "text": np.array(["big big", "big"], object)}
    tokens = Tokenize(path, eot_id=70_001, dtype="int32")(dict(batch))["tokens"]
    assert [t.tolist() for t in tokens] == [[70_000, 70_000, 70_001], [70_000, 70_001]]
    assert tokens[0].dtype == np.dtype("<i4")


def test_a_pickled_stage_still_encodes_special_token_strings_as_text() -> None:
    """Ray ships stages to its workers pickled; a pickled Tokenizer alone forgets the setting."""
    stage = pickle.loads(pickle.dumps(Tokenize(tokenizer_file(), eot_id=0, dtype="uint16")))
    batch = {"status": np.array([""], object), "text": np.array([TEXTS[0]], object)}
    assert 0 not in stage(batch)["tokens"][0][:-1].tolist()


def test_the_stats_count_a_kept_documents_tokens_from_its_shard_ids_as_they_would_from_its_text() -> None:
    # The stats take kept rows' counts from the tokenized rows instead of tokenizing twice.
    path = tokenizer_file()
    batch = {
        "status": np.array(["", "", ""], object),
        "dropped_by": np.array(["", "", ""], object),
        "language": np.array(["en", "", "de"], object),
        "text": np.array(TEXTS, object),
    }
    counts = _kept_count_columns({**batch, **Tokenize(path, eot_id=0, dtype="uint16")(dict(batch))})
    tokenizer = load_tokenizer(path)
    assert counts["tokens"].tolist() == [
        len(tokenizer.encode(t, add_special_tokens=False).ids) for t in TEXTS
    ]
    assert counts["bytes"].tolist() == [len(t.encode("utf-8")) for t in TEXTS]
    assert counts["language"].tolist() == ["en", "unknown", "de"]


def test_texts_encoded_a_few_bytes_at_a_time_get_the_ids_of_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = {
        "status": np.array(["", "dropped_x", "", ""], object),
        "text": np.array([*TEXTS[:1], "gone", *TEXTS[1:]], object),
    }
    whole = Tokenize(tokenizer_file(), eot_id=0, dtype="uint16")(dict(batch))["tokens"]
    monkeypatch.setattr("strata.pipeline.tokenize.ENCODE_BYTES", 50)  # about one text per run
    runs = Tokenize(tokenizer_file(), eot_id=0, dtype="uint16")(dict(batch))["tokens"]
    assert [t.tolist() for t in runs] == [t.tolist() for t in whole]
    assert len(runs[1]) == 0 and all(len(t) > 1 for t in runs[[0, 2, 3]])
