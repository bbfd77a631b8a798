"""A declaration means what it says: no key declared twice, no boolean read as a number."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import ValidationError

import strata.spec
from strata.errors import SpecError
from strata.spec import load_spec
from strata.spec.base import Section
from strata.yaml_loader import load_yaml, parse_yaml

STATIC = """\
config:
  strata:cluster:
    provider: static
    instance_type: cpu
    node_count: 2
    inventory: {inventory}
"""
PIPELINE = """\
kind: pipeline
name: p
input: {paths: [data/demo/corpus.jsonl]}
output: {dir: runs/p}
"""
TRAIN = """\
kind: train
name: t
data: {shards: runs/x}
steps: 10
output: {dir: runs/t}
"""
SWEEP = """\
kind: sweep
name: s
data: {shards: runs/x}
models: [{n_layers: 1, d_model: 16, n_heads: 2}, {n_layers: 2, d_model: 16, n_heads: 2}]
tokens: [1000, 2000]
output: {dir: runs/s}
"""
LOCAL_INVENTORY = "playbooks/inventories/local.yml"


def refused(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "key", "first"),
    [
        # The three examples: a node count, a whole network block, a whole quality block.
        (
            STATIC.format(inventory=LOCAL_INVENTORY) + "    node_count: 64\n",
            7,
            "config.strata:cluster.node_count",
            5,
        ),
        (
            STATIC.format(inventory=LOCAL_INVENTORY)
            + "    network: {allowed_ingress_cidrs: [203.0.113.0/24]}\n    network: {efa: false}\n",
            8,
            "config.strata:cluster.network",
            7,
        ),
        (
            PIPELINE + "quality:\n  gopher: {enabled: false}\nquality:\n  c4: {enabled: true}\n",
            7,
            "quality",
            5,
        ),
        (TRAIN + "steps: 20\n", 6, "steps", 4),
        (SWEEP + "seq_len: 16\nseq_len: 32\n", 8, "seq_len", 7),
        # Nested, in a flow mapping, inside a list.
        (TRAIN + "model:\n  n_layers: 2\n  d_model: 64\n  n_layers: 4\n", 9, "model.n_layers", 7),
        (TRAIN + "zero: {stage: 1, stage: 3}\n", 6, "zero.stage", 6),
        (SWEEP.replace("{n_layers: 2,", "{n_layers: 2, n_layers: 3,"), 4, "models.1.n_layers", 4),
        # Two spellings YAML reads as one key.
        (TRAIN + "1: a\n0x1: b\n", 7, "1", 6),
    ],
)
def test_a_key_declared_twice_is_refused_with_file_key_and_lines(
    write_yaml, text: str, line: int, key: str, first: int
) -> None:
    path = write_yaml(text)
    message = refused(path)
    assert message.startswith(f"{path}: line {line}: key `{key}` is declared twice (first on line {first})")


def test_the_repository_yaml_has_no_duplicate_keys() -> None:
    files = [p for d in ("jobs", "stacks", "playbooks", "tests/fixtures") for p in Path(d).rglob("*.y*ml")]
    assert len(files) > 20
    for path in files:
        load_yaml(path)  # raises on a duplicate


def test_a_hand_written_inventory_with_a_duplicate_key_is_refused_at_validation(write_yaml) -> None:
    inventory = write_yaml(
        "all:\n  children:\n    ray_head:\n      hosts:\n        a: {ansible_host: 10.0.0.1}\n"
        "        a: {ansible_host: 10.0.0.2}\n",
        name="hosts.yml",
    )
    message = refused(write_yaml(STATIC.format(inventory=inventory)))
    assert f"{inventory}: line 6: key `all.children.ray_head.hosts.a` is declared twice" in message


def test_merge_keys_may_be_overridden_and_aliases_are_read_once() -> None:
    text = "base: &b {lr: 1, wd: 2}\nrun:\n  <<: *b\n  lr: 3\nagain: *b\n"
    assert parse_yaml(text, "x.yaml") == {
        "base": {"lr": 1, "wd": 2},
        "run": {"lr": 3, "wd": 2},
        "again": {"lr": 1, "wd": 2},
    }
    with pytest.raises(SpecError, match=r"x.yaml: line 3: key `run.lr` is declared twice"):
        parse_yaml("run:\n  lr: 1\n  lr: 2\n", "x.yaml")


def test_malformed_and_missing_files_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_yaml("a: [1\n", "bad.yaml")
    with pytest.raises(SpecError, match="file not found"):
        load_yaml(tmp_path / "absent.yaml")
    assert parse_yaml("", "empty.yaml") is None


# Booleans are not numbers, in every field of every section.


def _sections() -> list[type[Section]]:
    for module in pkgutil.iter_modules(strata.spec.__path__):
        importlib.import_module(f"strata.spec.{module.name}")
    found: list[type[Section]] = []
    todo = [Section]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _is_number(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if typing.get_origin(annotation) is Literal:
        return any(type(v) is int for v in typing.get_args(annotation))
    return False


def _bool_samples(annotation: Any) -> list[Any]:
    """Values of `annotation`'s shape with a boolean where a number belongs ([] if it has no number)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_number(annotation):
        return [True, False]
    if origin in (typing.Union, __import__("types").UnionType):
        if bool in args:
            return []
        return [s for arg in args for s in _bool_samples(arg)]
    if origin is list:
        return [[1, *s] for s in ([x] for x in _bool_samples(args[0]))]
    if origin is tuple:
        return [
            tuple(1 if j != i else True for j in range(len(args)))
            for i, a in enumerate(args)
            if _is_number(a)
        ]
    if origin is dict:
        keys = [{k: 1} for k in _bool_samples(args[0])[:1]]
        values = [{"1" if args[0] is str else 1: v} for v in _bool_samples(args[1])[:1]]
        return keys + values
    return []


def _field_errors(model: type[Section], name: str, value: Any) -> list[str]:
    try:
        model.model_validate({name: value})
    except ValidationError as exc:
        return [err["msg"] for err in exc.errors() if err["loc"][:1] == (name,)]
    return []


def test_no_section_reads_a_boolean_as_a_number() -> None:
    checked = 0
    for model in _sections():
        for name, field in model.model_fields.items():
            for sample in _bool_samples(field.annotation):
                errors = _field_errors(model, name, sample)
                assert any("got the boolean" in e or "got a boolean" in e for e in errors), (
                    f"{model.__name__}.{name} = {sample!r} was accepted: {errors}"
                )
                checked += 1
    assert checked > 80  # every int, float and numeric Literal field of the spec, and their containers


def test_floats_still_take_ints_and_bool_fields_take_booleans() -> None:
    floats = bools = 0
    for model in _sections():
        for name, field in model.model_fields.items():
            members = typing.get_args(field.annotation) or (field.annotation,)
            if float in members:
                assert not any("float" in e or "boolean" in e for e in _field_errors(model, name, 1)), name
                floats += 1
            if bool in members:
                assert _field_errors(model, name, True) == [], f"{model.__name__}.{name}"
                bools += 1
    assert floats > 20 and bools > 15


def test_node_count_true_names_the_key(write_yaml) -> None:
    path = write_yaml(STATIC.format(inventory=LOCAL_INVENTORY).replace("node_count: 2", "node_count: true"))
    message = refused(path)
    assert "key `config.strata:cluster.node_count`: expected a number, got the boolean true" in message


def test_a_boolean_inside_a_numeric_list_is_refused(write_yaml) -> None:
    message = refused(write_yaml(SWEEP.replace("tokens: [1000, 2000]", "tokens: [1000, true]")))
    assert "key `tokens`: expected a number (at [1]), got a boolean" in message


def test_ansible_refuses_a_playbook_with_a_duplicate_key(tmp_path: Path) -> None:
    from strata.errors import ClusterError
    from strata.playbook import run_playbook

    playbook = tmp_path / "twice.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  gather_facts: true\n  tasks: []\n")
    with pytest.raises(ClusterError, match="exited with"):
        run_playbook(playbook, Path(LOCAL_INVENTORY), {}, tmp_path / "run", check=True)
    log = "".join(p.read_text() for p in (tmp_path / "run" / "artifacts").rglob("stdout"))
    assert "duplicate mapping key 'gather_facts'" in log
