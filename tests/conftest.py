"""Shared fixtures. Tests run from the repository root (paths in declarations are relative to it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.chdir(REPO)


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML text into a temporary file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
