"""A fastText quality classifier, the DCLM recipe (Li et al. 2024, arXiv:2406.11794).

`train_classifier` trains a supervised fastText model from a positive and a negative JSONL
set (labels `__label__hq` and `__label__cc`, as in DCLM's published `fasttext-oh-eli5`
model) with DCLM's settings: word unigrams and bigrams (`wordNgrams=2`) and fastText's
defaults otherwise (mlfoundations/dclm, baselines/README.md, "Fasttext filtering": "we did
not deviate from their default values"): lr 0.1, dim 100, context window 5, 5 epochs,
minCount 1, 2,000,000 hash buckets for the bigrams (which make the model file ~800 MB at
dim 100; fewer buckets make it smaller at the cost of more bigrams sharing a vector). A
document is one line of fastText input: its whitespace collapsed to single spaces (DCLM's
`classify_fasttext_hq_prob` joins its lines with spaces).

`QualityClassifier` is the pipeline stage: it loads a model from a path (one trained here,
or a published one such as DCLM's), writes each scored document's probability of the
job's label to `quality_score` and drops documents under the threshold
(`dropped_classifier_score`).
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import random
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fasttext
import numpy as np

from strata.errors import JobError
from strata.files import atomic_path
from strata.pipeline.documents import Batch, score_kept_rows
from strata.spec.quality import ClassifierSpec

logger = logging.getLogger(__name__)

POSITIVE_LABEL = "__label__hq"
NEGATIVE_LABEL = "__label__cc"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainSettings:
    """fastText `train_supervised` settings; the defaults are DCLM's (see the module docstring)."""

    epochs: int = 5
    lr: float = 0.1
    dim: int = 100
    word_ngrams: int = 2
    min_count: int = 1
    buckets: int = 2_000_000
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainReport:
    """What was trained: documents per label and the model's own precision@1 on its training set."""

    positive: int
    negative: int
    train_precision: float
    out: Path


def fasttext_line(text: str) -> str:
    """A document as one line of fastText input: whitespace (newlines included) collapsed."""
    return " ".join(text.split())


def read_texts(path: Path, text_key: str = "text") -> list[str]:
    """The non-empty `text_key` values of a JSONL file, in file order.

    Raises JobError naming the file and line of a line that is not a JSON object with the key.
    """
    if not path.is_file():
        raise JobError(f"{path}: no such file (a JSONL file of documents with a {text_key!r} field)")
    texts = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record[text_key]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise JobError(
                    f"{path}:{number}: not a JSON object with a {text_key!r} string ({exc}); "
                    "fix the line or pass --text-key"
                ) from exc
            if isinstance(text, str) and text.strip():
                texts.append(fasttext_line(text))
    if not texts:
        raise JobError(f"{path}: no document with a non-empty {text_key!r} field")
    return texts


def train_classifier(
    positive: Path, negative: Path, out: Path, settings: TrainSettings, text_key: str = "text"
) -> TrainReport:
    """Train on `positive` (`__label__hq`) against `negative` (`__label__cc`); write the model to `out`.

    The two sets are shuffled together with `settings.seed`, which also seeds fastText. The
    model is not reproducible bit for bit: fastText 0.9.2 gave different weights for the same
    inputs and seed on one thread in 1 of 3 runs (measured here). fastText trains in a fresh
    process: inside a long test process (the whole suite in one pytest run) its trainer
    stopped with "Encountered NaN" on the inputs that train in a fresh process.
    """
    pos, neg = read_texts(positive, text_key), read_texts(negative, text_key)
    lines = [f"{POSITIVE_LABEL} {t}" for t in pos] + [f"{NEGATIVE_LABEL} {t}" for t in neg]
    random.Random(settings.seed).shuffle(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="strata-classifier-") as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with (
            ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as fresh,
            atomic_path(out) as tmp_out,
        ):
            precision = fresh.submit(_train, train_file, tmp_out, settings).result()
    logger.info("trained on %d positive and %d negative documents: %s", len(pos), len(neg), out)
    return TrainReport(positive=len(pos), negative=len(neg), train_precision=precision, out=out)


def _train(train_file: Path, out: Path, settings: TrainSettings) -> float:
    """fastText's supervised training on `train_file`; writes the model to `out` and returns
    its precision@1 on its own training set."""
    model = fasttext.train_supervised(
        input=str(train_file),
        epoch=settings.epochs,
        lr=settings.lr,
        dim=settings.dim,
        wordNgrams=settings.word_ngrams,
        minCount=settings.min_count,
        bucket=settings.buckets,
        seed=settings.seed,
        thread=settings.threads,
        verbose=0,
    )
    _, precision, _ = model.test(str(train_file))
    model.save_model(str(out))
    return float(precision)


def load_model(path: str) -> Any:
    """A fastText model from a .bin/.ftz file, loaded once per worker process.

    The per-document chain builds its stages anew for every group of input files; a Ray
    worker process runs many groups, so the model (800 MB at DCLM's settings) is kept for
    the process's life, keyed by the file's path, size and modification time (a file
    rewritten in place is loaded again).
    """
    stat = Path(path).stat()
    return _load_model(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _load_model(path: str, size: int, mtime_ns: int) -> Any:
    del size, mtime_ns  # the cache key only
    return fasttext.load_model(path)


def label_scores(model: Any, texts: list[str], label: str) -> np.ndarray:
    """Each text's probability of `label` (over all of the model's labels), float64 in [0, 1]."""
    if not texts:
        return np.zeros(0, dtype=np.float64)
    labels, probs = model.predict([fasttext_line(t) for t in texts], k=-1)
    return np.array(
        [float(p[list(ls).index(label)]) for ls, p in zip(labels, probs, strict=True)], dtype=np.float64
    )


class QualityClassifier:
    """Per-row stage (one model per worker process): score kept rows of the spec's languages, drop low scores.

    Rows it does not score (dropped earlier, or of another language) keep `quality_score`
    NaN. Raises JobError when the model does not know the spec's label.
    """

    def __init__(self, spec: ClassifierSpec) -> None:
        self.spec = spec
        self.languages = frozenset(spec.languages)
        # Built on the driver and shipped to the workers, so the model is not kept here: the
        # label is checked now, before any work, and each worker process loads it once.
        known = list(fasttext.load_model(spec.model).get_labels())
        if spec.label not in known:
            raise JobError(
                f"quality.classifier.label: {spec.label!r} is not a label of {spec.model} (it has {known}); "
                "set the label whose score means high quality"
            )

    def __call__(self, batch: Batch) -> Batch:
        model = load_model(self.spec.model)
        return score_kept_rows(
            batch,
            column="quality_score",
            languages=self.languages,
            score=lambda texts: label_scores(model, texts, self.spec.label),
            drop=lambda scores: scores < self.spec.threshold,
            reason="dropped_classifier_score",
        )
