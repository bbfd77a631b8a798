"""The planner turns budgets into compute, nodes, time and cost the way a user would by hand."""

from __future__ import annotations

import pytest
import yaml

from strata.cli import main
from strata.errors import StrataError
from strata.scaling.laws import HOFFMANN, LAWS
from strata.scaling.planner import Budget, plan, train_job_from_plan
from strata.spec import TrainJob
from strata.spec.catalog import load_catalog

P5_NODE_FLOPS = 8 * 989e12


def test_gpu_hours_on_p5() -> None:
    # 800 H100-hours = 100 p5 node-hours; at 50% MFU that is 100 · 3600 · 8 · 989e12 · 0.5 FLOPs.
    p = plan(law=HOFFMANN, budget=Budget(accelerator_hours=800), catalog=load_catalog(),
             instance_name="H100", mfu=0.5, days=1)  # fmt: skip
    assert p.instance == "p5.48xlarge"
    assert p.flops == pytest.approx(100 * 3600 * P5_NODE_FLOPS * 0.5)
    assert p.node_hours == pytest.approx(100)
    assert p.nodes == 5  # ceil(100 node-hours / 24 h)
    assert p.wall_hours == pytest.approx(20)
    assert p.usd == pytest.approx(100 * 98.32)


def test_dollars_buy_node_hours() -> None:
    p = plan(law=HOFFMANN, budget=Budget(usd=9832), catalog=load_catalog(), instance_name="p5.48xlarge",
             mfu=0.5, nodes=4)  # fmt: skip
    assert p.node_hours == pytest.approx(100)
    assert p.wall_hours == pytest.approx(25)
    assert p.flops == pytest.approx(100 * 3600 * P5_NODE_FLOPS * 0.5)


def test_inverse_from_params_and_tokens() -> None:
    p = plan(law=HOFFMANN, budget=Budget(params=1e9, tokens=2e10), catalog=load_catalog())
    assert p.flops == pytest.approx(6 * 1e9 * 2e10)
    assert (p.params, p.tokens, p.tokens_per_param) == (1e9, 2e10, 20)
    assert p.predicted_loss == pytest.approx(1.69 + 406.4 / 1e9**0.34 + 410.7 / 2e10**0.28)
    assert p.node_hours is None and p.usd is None  # no instance given


def test_shape_is_close_to_the_planned_parameters() -> None:
    for flops in (1e19, 1e21, 1e23, 1e25):
        p = plan(law=LAWS["chinchilla-20x"], budget=Budget(flops=flops), catalog=load_catalog())
        assert abs(p.shape_params / p.params - 1) < 0.1
        assert p.d_model % 128 == 0 and p.d_model // p.n_heads == 128


def test_mfu_comes_from_a_measurement_when_one_is_recorded() -> None:
    h200 = plan(law=HOFFMANN, budget=Budget(flops=1e21), catalog=load_catalog(), instance_name="p5e.48xlarge")
    assert h200.mfu == pytest.approx(0.567) and h200.mfu_source.startswith("measured")
    h100 = plan(law=HOFFMANN, budget=Budget(flops=1e21), catalog=load_catalog(), instance_name="p5.48xlarge")
    assert (h100.mfu, h100.mfu_source) == (0.4, "default")


def test_manifest_check_counts_epochs() -> None:
    p = plan(
        law=HOFFMANN, budget=Budget(params=1e8, tokens=3e9), catalog=load_catalog(), available_tokens=10**9
    )
    assert p.warnings == ["the plan needs 3e+09 tokens but the manifest has 1e+09: 3.0 epochs over the data"]


@pytest.mark.parametrize(
    ("budget", "instance", "message"),
    [
        (Budget(flops=1e21, usd=10), None, "exactly one budget"),
        (Budget(accelerator_hours=10), None, "needs an instance type"),
        (Budget(usd=1000), "p5e.48xlarge", "no public price"),
        (Budget(flops=1e21), "Z100", "accelerators: "),
        (Budget(params=1e9), None, "go together"),
    ],
)
def test_bad_budgets_are_refused(budget: Budget, instance: str | None, message: str) -> None:
    with pytest.raises(StrataError, match=message):
        plan(law=HOFFMANN, budget=budget, catalog=load_catalog(), instance_name=instance)


def test_job_from_a_plan_is_a_valid_training_job() -> None:
    p = plan(
        law=HOFFMANN, budget=Budget(flops=1e21), catalog=load_catalog(), instance_name="p5.48xlarge", nodes=2
    )
    job = TrainJob.model_validate(
        train_job_from_plan(p, name="planned", shards="runs/x", accelerators_per_node=8)
    )
    assert job.workers.num_workers == 16 and job.workers.use_gpu
    assert job.steps * 8 * 2048 * 16 >= p.tokens > (job.steps - 1) * 8 * 2048 * 16
    assert (job.model.n_layers, job.model.d_model) == (p.n_layers, p.d_model)


def test_cli_plan_json_and_write_job(tmp_path, capsys) -> None:
    out = tmp_path / "planned.yaml"
    main(["plan", "--compute", "1.2e22", "--law", "chinchilla-20x", "--json", "--write-job", str(out)])
    printed = capsys.readouterr().out
    assert '"params": 10000000000.0' in printed
    assert yaml.safe_load(out.read_text())["kind"] == "train"
