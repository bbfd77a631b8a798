"""`quarantine.jsonl` (bad input records with their source and offset) and `duplicates.jsonl`
(every removed duplicate with the id of the kept document), written by the Ray workers.

Each batch of rows (BATCH_ROWS of a block sorted by input order: strata.pipeline.blockwise)
writes its records to a part file named by the input order of its first record,
`<name>.parts/part-<order>.jsonl`; the driver then concatenates the parts in name order
into `<name>` by streaming file to file, without parsing them, and removes the parts. The files are byte for byte what one process writing
the records in input order would write. The output folder may be local or an object-storage
prefix (strata.storage); the workers write their parts there themselves.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strata.pipeline.aggregate import sums
from strata.pipeline.blockwise import Rows, chained, numpy_batches, selected
from strata.pipeline.documents import Batch
from strata.storage import Location

QUARANTINE = "quarantine.jsonl"
DUPLICATES = "duplicates.jsonl"
COLUMNS = ["order", "id", "status", "detail", "duplicate_of"]


def _parts(out: Location, name: str) -> Location:
    return out / f"{name}.parts"


@dataclass(frozen=True, slots=True)
class WriteRecords:
    """map_batches: write the batch's quarantine and duplicate records as part files; return
    how many of each it wrote."""

    out: str

    def __call__(self, batch: Batch) -> Batch:
        quarantined: list[tuple[int, dict[str, Any]]] = []
        duplicates: list[tuple[int, dict[str, Any]]] = []
        for order, doc_id, status, detail, kept_id in zip(*(batch[c] for c in COLUMNS), strict=True):
            s = str(status)
            if s.startswith("quarantined_"):
                quarantined.append(
                    (int(order), {"source": str(detail), "reason": s.removeprefix("quarantined_")})
                )
            elif s.endswith("_duplicate"):
                kind = s.removeprefix("dropped_").removesuffix("_duplicate")
                duplicates.append(
                    (int(order), {"id": str(doc_id), "duplicate_of": str(kept_id), "kind": kind})
                )
        for name, records in ((QUARANTINE, quarantined), (DUPLICATES, duplicates)):
            if records:
                lines = "".join(json.dumps(r) + "\n" for _, r in sorted(records, key=lambda r: r[0]))
                part = _parts(Location(self.out), name) / f"part-{records[0][0]:020d}.jsonl"
                part.write_bytes(lines.encode("utf-8"))
        return {"records": np.array([len(quarantined) + len(duplicates)], dtype=np.int64)}


def write_side_files(out_dir: Location | Path, rows: Rows) -> int:
    """Write both files from every row's status; return the number of records written."""
    out = Location.of(out_dir)
    for name in (QUARANTINE, DUPLICATES):
        _parts(out, name).remove_tree()
    write = chained(selected(COLUMNS), numpy_batches(WriteRecords(str(out))))
    written = sums(rows, ["records"], prepare=write)["records"]
    for name in (QUARANTINE, DUPLICATES):
        parts = _parts(out, name)
        with (out / name).open_write() as whole:
            for part in parts.names():
                if part.startswith("part-") and part.endswith(".jsonl"):
                    with (parts / part).open_read() as piece:
                        shutil.copyfileobj(piece, whole)
        parts.remove_tree()
    return written
