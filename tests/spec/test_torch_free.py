"""`strata validate` and `strata plan` load no torch, DeepSpeed or Ray: every declaration in the
repository is loaded and a plan is made in a fresh interpreter, which then lists what it imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from pathlib import Path
from strata.cli import build_parser
from strata.scaling.laws import LAWS
from strata.scaling.planner import Budget, plan, train_job_from_plan
from strata.spec import TrainJob, load_spec
from strata.spec.catalog import load_catalog
from strata.spec.models import PRESETS, build_model_config
from strata.train.deepspeed_config import build_ds_config

build_parser()
files = [*Path("jobs").rglob("*.yaml"), *Path("stacks").glob("Pulumi.*.yaml"), *Path("tests/fixtures").glob("*.yaml")]
for spec in map(load_spec, files):
    if isinstance(spec, TrainJob):
        build_model_config(spec.model, 50_304).flops_per_token()
        build_ds_config(spec, spec.data_parallel)
catalog = load_catalog()
planned = plan(law=LAWS["hoffmann"], budget=Budget(flops=1e21), catalog=catalog, instance_name="p5.48xlarge")
TrainJob.model_validate(train_job_from_plan(planned, name="p", shards="s", accelerators_per_node=8))
TrainJob.model_validate({"kind": "train", "name": "l", "data": {"shards": "s"}, "output": {"dir": "o"},
                         "steps": 1, "model": {"preset": next(iter(PRESETS))}})
print(json.dumps({"files": len(files), "loaded": sorted(m for m in ("torch", "deepspeed", "ray") if m in sys.modules)}))
"""


def test_validating_and_planning_import_no_torch_deepspeed_or_ray() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["files"] >= 8
    assert result["loaded"] == []
