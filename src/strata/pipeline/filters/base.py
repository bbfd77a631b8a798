"""The base of every filter: it owns batching and drop reasons, subclasses decide."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from strata.pipeline.documents import Batch, kept_mask


class Filter(ABC):
    """Ray Data map_batches stage. A dropped row's status becomes `dropped_<name>_<reason>`."""

    name: str

    @abstractmethod
    def keep(self, text: str) -> tuple[bool, str]:
        """Return (True, "") to keep the document, or (False, reason) to drop it."""

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        texts = batch["text"]
        for i in np.flatnonzero(kept_mask(batch)):
            ok, reason = self.keep(str(texts[i]))
            if not ok:
                status[i] = f"dropped_{self.name}_{reason}"
        batch["status"] = status
        return batch
