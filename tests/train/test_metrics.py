"""Metrics go to metrics.jsonl and TensorBoard; a resumed run keeps only the steps before its checkpoint."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from strata.train.metrics import MetricsLogger, read_metrics


def test_rows_reach_jsonl_and_tensorboard(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path / "metrics.jsonl", tensorboard_dir=tmp_path / "tb")
    for step in (1, 2, 3):
        logger.log({"step": step, "loss": 5.0 - step, "memory_mib_per_rank": [1.0, 2.0]})
    logger.close()
    assert [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [4.0, 3.0, 2.0]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 4.0), (2, 3.0), (3, 2.0)]


def test_a_resumed_run_drops_the_rows_after_its_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    first = MetricsLogger(path)
    for step in range(1, 7):
        first.log({"step": step, "loss": float(step)})
    first.close()
    resumed = MetricsLogger(path, keep_steps=4)
    resumed.log({"step": 5, "loss": 50.0})
    resumed.close()
    assert [(r["step"], r["loss"]) for r in read_metrics(path)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 4.0),
        (5, 50.0),
    ]
