"""The base of every filter: it owns batching, languages and drop reasons; subclasses decide."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.quality import RuleSpec


class Filter(ABC):
    """Per-row stage. A dropped row's status becomes `dropped_<name>_<reason>`.

    The filter looks only at kept rows whose `language` is one of the spec's languages
    (all rows when that list is empty, or when no language was identified).
    """

    name: str
    spec: RuleSpec  # subclasses narrow it to their own rule set's spec

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.languages = frozenset(spec.languages)

    def rewrite(self, text: str) -> str:
        """Clean the text before it is judged (line-level rules); the default keeps it."""
        return text

    @abstractmethod
    def keep(self, text: str) -> tuple[bool, str]:
        """Return (True, "") to keep the document, or (False, reason) to drop it."""

    def _applies(self, language: str) -> bool:
        return not self.languages or not language or language in self.languages

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        texts = batch["text"].astype(object)
        languages = batch["language"] if "language" in batch else np.full(len(status), "", dtype=object)
        for i in np.flatnonzero(kept_mask(batch)):
            if not self._applies(str(languages[i])):
                continue
            texts[i] = self.rewrite(str(texts[i]))
            ok, reason = self.keep(texts[i])
            if not ok:
                status[i] = f"dropped_{self.name}_{reason}"
        batch["status"], batch["text"] = status, texts
        return batch
