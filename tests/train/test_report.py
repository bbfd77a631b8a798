"""The training report and the accelerator peak that MFU is measured against."""

from __future__ import annotations

from pathlib import Path

from strata.spec import TrainJob
from strata.train.launch import peak_flops_per_worker
from strata.train.report import write_training_report


def job(use_gpu: bool) -> TrainJob:
    return TrainJob.model_validate({
        "kind": "train", "name": "t", "data": {"shards": "x"}, "output": {"dir": "o"}, "steps": 3,
        "workers": {"num_workers": 2, "use_gpu": use_gpu},
    })  # fmt: skip


def test_the_peak_comes_from_the_catalog_entry_of_the_submitted_instance() -> None:
    assert peak_flops_per_worker(job(use_gpu=True), "p5.48xlarge") == 989e12
    assert peak_flops_per_worker(job(use_gpu=False), "p5.48xlarge") is None  # CPU workers: no MFU
    assert peak_flops_per_worker(job(use_gpu=True), "no-such-instance") is None
    assert peak_flops_per_worker(job(use_gpu=True), None) is None


def test_report_summarises_the_run_and_plots_it(tmp_path: Path) -> None:
    rows = [
        {"step": s, "loss": 5.0 - s, "lr": 1e-3, "step_seconds": 0.5, "tokens_per_second_per_worker": 500.0,
         "memory_mib_max": 900.0 + s, "memory_mib_per_rank": [800.0, 900.0 + s], "mfu": 0.4 + s / 100}
        for s in (1, 2, 3)
    ]  # fmt: skip
    rows[2]["memory_mib_per_rank"] = [903.0]  # resumed on one worker
    summary = {"job": "t", "parameters": 1234, "flops_per_token": 5678, "mean_tokens_per_second": 1000.0}
    text = write_training_report(tmp_path, rows, summary).read_text()
    assert "| loss, first and last step | 4.0000 → 2.0000 |" in text
    assert "| MFU (mean after step 1) | 42.5% |" in text  # steps 2 and 3: 0.42, 0.43
    assert "| peak memory, largest rank | 903 MiB |" in text
    assert (tmp_path / "report" / "training.png").stat().st_size > 10_000
