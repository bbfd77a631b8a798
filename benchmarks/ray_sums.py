"""Wall time of the pipeline's sums and maps: Ray Data's own aggregations and maps (baseline)
against strata.pipeline.aggregate (partial sums per block on the workers, added up on the
driver) and strata.pipeline.blockwise (one plain task per block).

Usage:
    .venv/bin/python benchmarks/ray_sums.py [--rows 20000] [--blocks 16] [--repeat 5]

Both sides sum the same materialized dataset (rows with a language, a status and a token
count, like the stats' counts) on a private 2-CPU Ray: one global sum (`Dataset.sum` against
`sums`), sums per (language, status) (`groupby(...).sum` against `totals`), and a map of
every block (`map_batches(...).materialize()` against `map_blocks`). Checks that both give
the same numbers, then prints one JSON line per case: the wall time of each side's
first call (what a pipeline run pays: each of its sums is a one-off) and the median of the
--repeat - 1 calls after it (Ray has idle workers and actors to reuse by then), with the
ratios baseline / Strata. The two sides alternate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow.compute as pc
import ray

from strata.pipeline.aggregate import sums, totals
from strata.pipeline.blockwise import map_blocks, numpy_batches


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _doubled(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"tokens": batch["tokens"] * 2}


def _total(blocks: list[Any]) -> int:
    return sum(int(pc.sum(block["tokens"]).as_py() or 0) for block in ray.get(blocks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    ray.init(
        num_cpus=2, include_dashboard=False, _temp_dir=tempfile.mkdtemp(prefix="strata-ray-", dir="/tmp")
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    rng = np.random.default_rng(0)
    languages = np.array(["en", "de", "fr", "ja"], dtype=object)[rng.integers(0, 4, args.rows)]
    statuses = np.array(["kept", "dropped"], dtype=object)[rng.integers(0, 2, args.rows)]
    tokens = rng.integers(0, 2_000, args.rows)
    ds = (
        ray.data.range(args.rows, override_num_blocks=args.blocks)
        .map_batches(
            lambda b: {
                "language": languages[b["id"]],
                "status": statuses[b["id"]],
                "tokens": tokens[b["id"]],
            },
            batch_format="numpy",
        )
        .materialize()
    )

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        # First: Ray Data's aggregations leave actors that hold CPUs for a while after them.
        "map of every block": (
            lambda: _total(ds.map_batches(_doubled, batch_format="numpy").materialize().to_arrow_refs()),
            lambda: _total(map_blocks(ds.to_arrow_refs(), numpy_batches(_doubled)).non_empty()),
        ),
        "global sum": (lambda: int(ds.sum("tokens")), lambda: sums(ds, ["tokens"])["tokens"]),
        "sum per (language, status)": (
            lambda: sorted((r["language"], r["status"], r["sum(tokens)"]) for r in
                           ds.groupby(["language", "status"]).sum("tokens").take_all()),
            lambda: sorted((r["language"], r["status"], r["tokens"]) for r in
                           totals(ds, ["language", "status"], ["tokens"])),
        ),
    }  # fmt: skip
    for name, (baseline, strata) in cases.items():
        base_times, ours_times = [], []
        for _ in range(args.repeat):  # alternating, so that neither side always runs on a warmer Ray
            base_s, expected = _timed(baseline)
            ours_s, found = _timed(strata)
            if found != expected:
                raise SystemExit(f"{name}: strata gives {found}, Ray Data {expected}")
            base_times.append(base_s)
            ours_times.append(ours_s)
        row = {"case": name, "rows": args.rows, "blocks": args.blocks}
        for label, base, ours in (
            ("first", base_times[0], ours_times[0]),
            ("median_after", statistics.median(base_times[1:]), statistics.median(ours_times[1:])),
        ):
            row |= {f"{label}_ray_data_s": round(base, 3), f"{label}_strata_s": round(ours, 3),
                    f"{label}_ratio": round(base / ours, 1)}  # fmt: skip
        print(json.dumps(row))
    ray.shutdown()


if __name__ == "__main__":
    main()
