"""The quality classifier on real text: trained with `strata classifier train` on Python
documentation against Debian changelogs, it ranks held-out documentation above held-out
changelogs; the stage keeps its score with each document and drops low scores; a missing
or foreign model file is refused when the job is validated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from strata.cli import main
from strata.errors import JobError
from strata.pipeline.classifier import QualityClassifier, label_scores, load_model
from strata.spec.pipeline import PipelineJob
from strata.spec.quality import ClassifierSpec

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "data" / "demo" / "corpus.jsonl"  # Python 3.11 documentation sections (data/demo/SOURCE.md)
# 2,000,000 buckets (fastText's and DCLM's) make an 800 MB model; 20,000 make an 8 MB one.
BUCKETS = "20000"
CHANGELOGS = REPO / "tests" / "fixtures" / "classifier" / "debian_changelogs.jsonl"  # see its README.md


def _texts(path: Path, source: str, n: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows if r["source"] == source][:n]


def _write(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    above = (positive[:, None] > negative[None, :]).sum() + 0.5 * (
        positive[:, None] == negative[None, :]
    ).sum()
    return float(above / (len(positive) * len(negative)))


@pytest.fixture(scope="module")
def split() -> dict[str, list[str]]:
    docs, changelogs = _texts(DOCS, "python-docs", 340), _texts(CHANGELOGS, "debian-changelog", 340)
    return {
        "train_pos": docs[0::2],
        "test_pos": docs[1::2],
        "train_neg": changelogs[0::2],
        "test_neg": changelogs[1::2],
    }


@pytest.fixture(scope="module")
def model_path(split: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("classifier")
    out = tmp / "quality.bin"
    main(
        [
            "classifier", "train",
            "--positive", str(_write(tmp / "pos.jsonl", split["train_pos"])),
            "--negative", str(_write(tmp / "neg.jsonl", split["train_neg"])),
            "--out", str(out),
            "--buckets", BUCKETS,
        ]
    )  # fmt: skip
    return out


def test_held_out_documentation_ranks_above_changelogs(model_path: Path, split: dict[str, list[str]]) -> None:
    model = load_model(str(model_path))
    pos = label_scores(model, split["test_pos"], "__label__hq")
    neg = label_scores(model, split["test_neg"], "__label__hq")
    assert len(pos) == len(neg) == 170
    assert auc(pos, neg) >= 0.95
    assert np.all((pos >= 0) & (pos <= 1))


def test_stage_keeps_the_score_and_drops_low_scores(model_path: Path, split: dict[str, list[str]]) -> None:
    texts = [split["test_pos"][0], split["test_neg"][0], split["test_neg"][1], split["test_pos"][1]]
    batch = {
        "status": np.array(["", "", "dropped_gopher_too_few_words", ""], object),
        "text": np.array(texts, object),
        "language": np.array(["en", "en", "en", "de"], object),
        "quality_score": np.full(4, np.nan),
    }
    spec = ClassifierSpec(enabled=True, model=str(model_path), threshold=0.5)
    out = QualityClassifier(spec)(batch)
    assert list(out["status"]) == ["", "dropped_classifier_score", "dropped_gopher_too_few_words", ""]
    assert out["quality_score"][0] > 0.5 > out["quality_score"][1]
    # Rows dropped earlier, or of a language the spec does not list, are not scored.
    assert np.isnan(out["quality_score"][2]) and np.isnan(out["quality_score"][3])


def test_a_label_the_model_lacks_is_refused(model_path: Path) -> None:
    with pytest.raises(JobError, match="__label__good"):
        QualityClassifier(ClassifierSpec(enabled=True, model=str(model_path), label="__label__good"))


def _job(classifier: dict[str, object]) -> PipelineJob:
    return PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "t",
            "input": {"paths": [str(DOCS)]},
            "quality": {"classifier": classifier},
            "output": {"dir": "out"},
        }
    )


def test_missing_or_foreign_model_is_refused_at_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"quality\.classifier\.model[\s\S]*not found: nope\.bin"):
        _job({"enabled": True, "model": "nope.bin"})
    with pytest.raises(ValidationError, match=r"quality\.classifier[\s\S]*model: required"):
        _job({"enabled": True})
    with pytest.raises(ValidationError, match="not a fastText model"):
        _job({"enabled": True, "model": str(CHANGELOGS)})


def test_train_refuses_a_line_without_text(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text key"}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["classifier", "train", "--positive", str(bad), "--negative", str(CHANGELOGS), "--out", "x.bin"])
    assert exit_info.value.code == 2
