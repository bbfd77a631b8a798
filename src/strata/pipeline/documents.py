"""The row schema shared by every stage.

Each document is a row with `id`, `source`, `order` (input position, used for
deterministic keep rules), `text` and `status`. A stage only looks at rows whose
status is empty (still kept) and sets `status` to the reason it drops a row, so
every drop is counted at the end and nothing vanishes silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KEPT = ""
Batch = dict[str, np.ndarray[Any, Any]]


def kept_mask(batch: Batch) -> np.ndarray[Any, Any]:
    """Rows no stage has dropped yet."""
    return np.asarray(batch["status"] == KEPT, dtype=bool)
