"""Read a YAML file the one way Strata reads YAML: safe, and refusing duplicate keys.

PyYAML (like YAML 1.1 parsers generally) keeps the last of two equal keys in a
mapping, so `node_count: 2` followed by `node_count: 64` silently means 64. The
YAML spec says keys of a mapping are unique; Strata refuses the file, naming the
key, its path and both lines, as Pulumi's own loader does for stack configs.
Merge keys (`<<: *defaults`) may still be overridden by an explicit key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from strata.errors import SpecError

MERGE_TAG = "tag:yaml.org,2002:merge"


def load_yaml(path: str | Path) -> Any:
    """The data of the YAML file at `path`; SpecError if missing, malformed or with a duplicate key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found") from None
    return parse_yaml(text, path)


def parse_yaml(text: str, source: str | Path) -> Any:
    """The data of one YAML document; `source` names it in errors (usually its path)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(loader, node, source, (), set())
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from None
    finally:
        loader.dispose()


def _check_unique_keys(
    loader: yaml.SafeLoader, node: yaml.Node, source: str | Path, path: tuple[str, ...], seen: set[int]
) -> None:
    """Walk the node graph (aliases visited once) and refuse a mapping with two equal keys."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_unique_keys(loader, item, source, (*path, str(index)), seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                _check_unique_keys(loader, value_node, source, path, seen)
                continue
            key = loader.construct_object(key_node, deep=True)
            where = (*path, str(key))
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:  # an unhashable key: PyYAML's constructor refuses it with its own message
                earlier = key_node
            if earlier is not key_node:
                raise SpecError(
                    f"{source}: line {key_node.start_mark.line + 1}: key `{'.'.join(where)}` is declared "
                    f"twice (first on line {earlier.start_mark.line + 1}); YAML would keep only the last "
                    "one, so delete or merge one of them"
                )
            _check_unique_keys(loader, value_node, source, where, seen)
