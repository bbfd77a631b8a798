"""The layering rules of docs/architecture.md, checked on every `strata` import in src/.

Each module belongs to one layer; a layer may import only the layers listed for it. The
check reads every `import strata...` and `from strata... import` in every module (also
those inside functions), so a lazy import cannot hide a forbidden edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Modules at the bottom: no layer of their own, importable from everywhere.
FOUNDATION = {
    "strata",
    "strata.errors",
    "strata.files",
    "strata.locks",
    "strata.ports",
    "strata.shards",
    "strata.storage",
    "strata.yaml_loader",
}
ORCHESTRATION = "orchestration"
CLI = "cli"

# layer -> layers it may import (besides itself and the foundation). docs/architecture.md
# states the same table.
ALLOWED: dict[str, set[str]] = {
    "spec": set(),
    "scaling": {"spec"},
    "pipeline": {"spec"},
    "train": {"spec", "scaling"},
    "stacks": {"spec"},
    "images": {"spec"},
    ORCHESTRATION: {"spec", "scaling", "pipeline", "train", "stacks", "images"},
    CLI: {"spec", "scaling", "pipeline", "train", "stacks", "images", ORCHESTRATION},
}


def layer_of(module: str) -> str | None:
    """The layer of a `strata.*` module name (None for the foundation)."""
    if module in FOUNDATION:
        return None
    parts = module.split(".")
    if parts[1] in {"cli", "__main__"}:
        return CLI
    if parts[1] in ALLOWED:
        return parts[1]
    return ORCHESTRATION


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def strata_imports(path: Path) -> set[str]:
    """Every `strata...` module `path` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("strata"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strata"):
            found.add(node.module)
    return found


MODULES = sorted(SRC.joinpath("strata").rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_a_module_imports_only_the_layers_below_it(path: Path) -> None:
    module = module_name(path)
    layer = layer_of(module)
    forbidden = []
    for imported in sorted(strata_imports(path)):
        target = layer_of(imported)
        if layer is None:
            ok = target is None
        else:
            ok = target is None or target == layer or target in ALLOWED[layer]
        if not ok:
            forbidden.append(f"{imported} ({target})")
    assert not forbidden, f"{module} ({layer or 'foundation'}) imports {', '.join(forbidden)}"


def test_the_layer_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The walker sees imports inside functions, where lazy imports hide."""
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from strata.pipeline.run import run\n", encoding="utf-8")
    imported = strata_imports(source)
    assert imported == {"strata.pipeline.run"}
    assert layer_of("strata.pipeline.run") not in ALLOWED["train"]
