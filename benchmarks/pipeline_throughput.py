"""End-to-end pipeline throughput: MB/s per core, and the speed-up from 1 to 2 Ray workers.

Runs a pipeline job (default: jobs/pipeline.yaml, every stage on, real multilingual web
pages and documentation) on a fresh local Ray with 1 CPU, then with 2 CPUs, each into an
empty output folder (nothing resumed). Times `run_pipeline` only, not Ray's start.

Usage: .venv/bin/python benchmarks/pipeline_throughput.py [--job jobs/pipeline.yaml] [--cpus 1 2]
       [--input /usr/share/doc/python3.11/html]   (other inputs for the same job, e.g. the
       530 HTML pages of Debian's python3.11-doc)
Prints one JSON line per run and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

ONE_RUN = """
import json, sys, tempfile, time
import ray
from strata.pipeline.read import input_files
from strata.pipeline.run import run_pipeline
from strata.spec.load import load_pipeline_job
job_file, cpus, out, inputs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
job = load_pipeline_job(job_file)
update = {"output": job.output.model_copy(update={"dir": out})}
if inputs:
    update["input"] = job.input.model_copy(update={"paths": inputs})
job = job.model_copy(update=update)
ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
         _temp_dir=tempfile.mkdtemp(prefix="sb-", dir="/tmp"), logging_level="WARNING")
ray.data.DataContext.get_current().enable_progress_bars = False
size = sum(__import__("os").path.getsize(p) for p in input_files(job.input))
start = time.perf_counter()
stats = run_pipeline(job)
seconds = time.perf_counter() - start
ray.shutdown()
print(json.dumps({"cpus": cpus, "seconds": round(seconds, 1), "input_mb": round(size / 1e6, 2),
                  "mb_per_s_per_core": round(size / 1e6 / seconds / cpus, 4),
                  "documents": stats["documents"]["total"], "kept": stats["documents"]["kept"],
                  "tokens": stats["tokens"]["total"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="jobs/pipeline.yaml")
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--input", nargs="*", default=[], help="input paths instead of the job's")
    args = parser.parse_args()
    results = []
    for cpus in args.cpus:
        out = tempfile.mkdtemp(prefix="strata-bench-pipeline-")
        run = subprocess.run(
            [sys.executable, "-c", ONE_RUN, args.job, str(cpus), out, *args.input],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            sys.exit(run.stderr[-3000:])
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
        subprocess.run(["rm", "-rf", out], check=True)
    if len(results) > 1:
        speedup = results[0]["seconds"] / results[-1]["seconds"]
        print(
            json.dumps(
                {
                    "speedup": f"{results[0]['cpus']} -> {results[-1]['cpus']} workers",
                    "value": round(speedup, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
