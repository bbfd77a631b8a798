#!/usr/bin/env bash
# Time `make demo` from a fresh clone (installation included), then a second `make demo`
# in the same clone. Prints one line per run; record them in docs/benchmarks.md.
# Usage: benchmarks/demo_fresh_clone.sh [REPO]   (default: this checkout)
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/strata"
cd "$work/strata"
for run in first second; do
  start=$(date +%s.%N)
  make demo >"$work/$run.log" 2>&1 || { tail -30 "$work/$run.log"; exit 1; }
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc)
  echo "make demo ($run run, $( [ $run = first ] && echo 'installation included' || echo 'installed')): ${secs} s;" \
    "ratio to the 600 s budget: $(echo "scale=2; $secs / 600" | bc)"
  grep -E "^\| (loss|tokens/s|total)" runs/demo/report.md | sed 's/^/  /'
done
