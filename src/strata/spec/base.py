"""The base of every declaration model: unknown keys fail, values are frozen."""

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """One YAML section. Changes go through `model_copy(update=...)` or `with_values`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
