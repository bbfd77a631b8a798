"""Strata's Pulumi program: `pulumi up` in this directory provisions the selected stack."""

from pathlib import Path

from strata.stacks.program import run

run(Path(__file__).resolve().parent.parent)
