"""`strata plan` refuses impossible inputs in one line, warns about budgets too small to train,
and defaults to the law that fits Chinchilla's data."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from strata.cli import main
from strata.plan_command import PLAN_FLAGS
from strata.scaling.laws import DEFAULT_LAW, LAWS
from strata.scaling.planner import Budget, PlanInputError, plan
from strata.spec.catalog import load_catalog

BAD_FLAGS = [
    (["--compute", "0"], "--compute: compute budget must be positive and finite, got 0 FLOPs"),
    (["--compute", "nan"], "--compute: compute budget must be positive and finite, got nan FLOPs"),
    (["--compute=-1e20"], "--compute: compute budget must be positive and finite, got -1e+20 FLOPs"),
    (["--compute", "inf"], "--compute: compute budget must be positive and finite"),
    (["--compute", "1e40"], "--compute: the budget comes to 1e+40 FLOPs, above the planner's limit"),
    (["--params", "1e9", "--tokens", "0"], "--tokens: token count must be positive"),
    (["--params", "-1", "--tokens", "1e9"], "--params: parameter count must be positive"),
    (["--params", "1e200", "--tokens", "1e200"], "--params/--tokens: the budget comes to inf FLOPs"),
    (["--tokens", "1e9"], "--params/--tokens: a parameter count and a token count go together"),
    (
        ["--gpu-hours", "nan", "--accelerator", "H100"],
        "--gpu-hours: accelerator-hour budget must be positive",
    ),
    (["--gpu-hours", "1e25", "--accelerator", "H100"], "--gpu-hours: the budget comes to"),
    (["--dollars", "-5", "--instance", "p5.48xlarge"], "--dollars: dollar budget must be positive"),
    (
        ["--gpu-hours", "10"],
        "--instance/--accelerator: an accelerator-hour or dollar budget needs an instance",
    ),
    (["--compute", "1e21", "--dollars", "5"], "--compute/--dollars: give exactly one budget"),
    ([], "give exactly one budget"),
    (["--compute", "1e21", "--instance", "p5.48xlarge", "--days", "0"], "--days: wall-clock target must be"),
    (
        ["--compute", "1e21", "--instance", "p5.48xlarge", "--days", "nan"],
        "--days: wall-clock target must be",
    ),
    (["--compute", "1e21", "--nodes", "0"], "--nodes: node count must be at least 1, got 0"),
    (
        ["--compute", "1e21", "--instance", "p5.48xlarge", "--nodes", "-2"],
        "--nodes: node count must be at least 1",
    ),
    (
        ["--compute", "1e21", "--nodes", "2", "--days", "3"],
        "--nodes/--days: give a node count or a wall-clock",
    ),
    (["--compute", "1e21", "--seq-len", "0"], "--seq-len: sequence length must be at least 1 token, got 0"),
    (["--compute", "1e21", "--vocab-size", "0"], "--vocab-size: vocabulary size must be at least 1 token"),
    (["--compute", "1e21", "--mfu", "nan"], "--mfu: model FLOPs utilization must be in (0, 1], got nan"),
    (["--compute", "1e21", "--mfu", "1.5"], "--mfu: model FLOPs utilization must be in (0, 1]"),
    (["--compute", "1e21", "--instance", "Z100"], "--instance/--accelerator: 'Z100' is not an instance type"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_each_bad_input_exits_2_with_one_line(flags: list[str], message: str, capsys, tmp_path) -> None:
    job = tmp_path / "job.yaml"
    with pytest.raises(SystemExit) as info:
        main(["plan", *flags, "--write-job", str(job)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not job.exists()  # nothing printed as a plan, nothing written
    assert captured.err.startswith(f"strata: error: {message}")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_planner_errors_name_quantities_and_the_cli_knows_each_one() -> None:
    cases = [
        lambda: Budget(flops=math.nan),
        lambda: Budget(params=1e9, tokens=-1),
        lambda: plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=1e21), catalog=load_catalog(), nodes=0),
        lambda: plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=1e21), catalog=load_catalog(), seq_len=0),
        lambda: plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=1e21), catalog=load_catalog(), mfu=2),
        lambda: plan(law=LAWS[DEFAULT_LAW], budget=Budget(accelerator_hours=1), catalog=load_catalog()),
    ]
    for case in cases:
        with pytest.raises(PlanInputError) as info:
            case()
        assert "--" not in str(info.value)  # a library user has no flags
        assert info.value.quantities and set(info.value.quantities) <= set(PLAN_FLAGS)
    with pytest.raises(PlanInputError, match=r"^compute budget must be positive and finite, got nan FLOPs$"):
        Budget(flops=math.nan)


def test_the_default_law_reproduces_chinchilla(capsys) -> None:
    # Chinchilla: 70B parameters on 1.4T tokens at 5.76e23 FLOPs (Hoffmann et al. 2022, table 3).
    main(["plan", "--compute", "5.76e23", "--json"])
    planned = json.loads(capsys.readouterr().out)
    assert planned["law"] == DEFAULT_LAW == "besiroglu"
    assert 6.5e10 < planned["params"] < 7.5e10 and 1.3e12 < planned["tokens"] < 1.4e12
    assert 17 < planned["tokens_per_param"] < 21 and planned["warnings"] == []
    main(["plan", "--compute", "5.76e23"])
    assert "besiroglu (Besiroglu et al. 2024 refit of Chinchilla approach 3)" in capsys.readouterr().out


def test_the_published_approach_3_constants_stay_selectable(capsys) -> None:
    main(["plan", "--compute", "5.76e23", "--law", "hoffmann", "--json"])
    planned = json.loads(capsys.readouterr().out)
    assert planned["law"] == "hoffmann" and 90 < planned["tokens_per_param"] < 95  # 32B on 3.0T


def test_a_budget_below_one_step_is_written_with_a_warning(capsys, tmp_path) -> None:
    job = tmp_path / "tiny.yaml"
    main(["plan", "--compute", "1e3", "--write-job", str(job)])
    out = capsys.readouterr().out
    assert "warning: the budget (1e+03 FLOPs) is below one training step of the proposed shape" in out
    assert "16384 tokens (micro-batch 8 x seq 2048 x 1 workers)" in out
    assert "warning: the closest model shape has" in out  # N of 1.6 parameters has no shape
    assert yaml.safe_load(job.read_text())["steps"] == 1


def test_one_step_on_sixteen_nodes_counts_every_worker() -> None:
    p = plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=5e13), catalog=load_catalog(),
             instance_name="p5.48xlarge", nodes=16)  # fmt: skip
    (warning,) = [w for w in p.warnings if "one training step" in w]
    assert f"{8 * 2048 * 128} tokens (micro-batch 8 x seq 2048 x 128 workers)" in warning
    alone = plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=5e13), catalog=load_catalog())
    assert not any("one training step" in w for w in alone.warnings)  # one worker's step fits


def test_a_budget_beyond_the_largest_shape_says_so() -> None:
    p = plan(law=LAWS[DEFAULT_LAW], budget=Budget(flops=1e29), catalog=load_catalog())
    assert (p.n_layers, p.d_model) == (256, 32768)  # the largest shape of the family
    assert any("the closest model shape has 3.3e+12 parameters" in w for w in p.warnings)
