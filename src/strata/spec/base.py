"""The base of every declaration model: unknown keys fail, values are frozen, booleans are not numbers."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """One YAML section. Changes go through `model_copy(update=...)` or `with_values`.

    Pydantic's lax mode reads `true` as 1 for an int or float field (and for a
    `Literal[0, 1, 2, 3]`), so `node_count: true` would mean one node. Every field of
    every section refuses a boolean wherever its type expects a number, inside lists,
    tuples and dicts too; an int still counts as a float.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_number(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is not None:
            where = bool_for_number(cls.model_fields[info.field_name].annotation, value)
            if where is not None:
                got = f"the boolean {str(value).lower()}" if where == "" else "a boolean"
                raise ValueError(f"expected a number{where}, got {got}; write the number itself")
        return value

    def with_values(self, values: Mapping[str, Any]) -> Self:
        """A copy with the values of nested keys replaced, named by dotted path
        (`{"output.dir": "/runs/a", "data.shards": "/runs/s"}`); not validated again."""
        update: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            head, _, rest = key.partition(".")
            if rest:
                nested.setdefault(head, {})[rest] = value
            else:
                update[head] = value
        for head, inner in nested.items():
            update[head] = getattr(self, head).with_values(inner)
        return self.model_copy(update=update)


def bool_for_number(annotation: Any, value: Any) -> str | None:
    """Where in `value` a boolean stands for a number of `annotation`, or None if nowhere.

    '' is the value itself, ' (at [2])' an item, ' (at key k)' a dict key or value.
    Nested sections are not entered: they check their own fields.
    """
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(value, bool):
        return "" if _wants_number(annotation) and not _takes_bool(annotation) else None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        found = (bool_for_number(arg, value) for arg in args if typing.get_origin(arg) in (list, tuple, dict))
        return next((where for where in found if where is not None), None)
    if origin in (list, tuple) and isinstance(value, list | tuple):
        homogeneous = origin is list or (len(args) == 2 and args[1] is Ellipsis)
        for index, item in enumerate(value):
            item_type = args[0] if homogeneous else (args[index] if index < len(args) else None)
            if bool_for_number(item_type, item) is not None:
                return f" (at [{index}])"
    if origin is dict and isinstance(value, dict):
        for key, item in value.items():
            if bool_for_number(args[0], key) is not None or bool_for_number(args[1], item) is not None:
                return f" (at key {key!r})"
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _wants_number(annotation: Any) -> bool:
    for member in _members(annotation):
        if member in (int, float):
            return True
        if typing.get_origin(member) is Literal and any(
            isinstance(v, int | float) and not isinstance(v, bool) for v in typing.get_args(member)
        ):
            return True
    return False


def _takes_bool(annotation: Any) -> bool:
    for member in _members(annotation):
        if member in (bool, Any):
            return True
        if typing.get_origin(member) is Literal and any(isinstance(v, bool) for v in typing.get_args(member)):
            return True
    return False
