"""The base of every declaration model: unknown keys fail, values are frozen."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """One YAML section. Changes go through `model_copy(update=...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
