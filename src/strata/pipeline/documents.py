"""The row schema shared by every stage, and the one text form every stage sees.

Each document is a row with `id`, `source`, `order` (input position, used for
deterministic keep rules), `text` and `status`. A stage only looks at rows whose
status is empty (still kept) and sets `status` to the reason it drops a row, so
every drop is counted at the end and nothing vanishes silently. Once a stage has run, its
dropped rows shed their text (`shed_dropped_text`): what is counted of it stays.

Text is normalized once, when it is read (and again after HTML extraction, whose entities
can bring back any form): see `normalize_text`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # `strata validate` reads this module and loads no Ray
    import pyarrow as pa
    import ray.data

KEPT = ""
Batch = dict[str, np.ndarray[Any, Any]]
BYTE_ORDER_MARK = "\ufeff"
# Unicode category Cc (C0, DEL, C1) except tab and line feed; carriage returns are line ends.
CONTROL = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")
# The same, looked for in UTF-8 bytes first: C0 and DEL are single bytes, C1 is 0xC2 0x80-0x9F.
# Both searches run at memory speed, a str regex at ~9 ns a character (measured; see below).
C0_DEL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")


def kept_mask(batch: Batch) -> np.ndarray[Any, Any]:
    """Rows no stage has dropped yet."""
    return np.asarray(batch["status"] == KEPT, dtype=bool)


def kept_rows(ds: ray.data.Dataset) -> ray.data.Dataset:
    """The rows no stage has dropped: an Arrow filter on `status`, no row leaves Arrow (a
    Python predicate turns every row, text included, into a dict)."""
    from ray.data.expressions import col

    return ds.filter(expr=col("status") == KEPT)


def kept_table(table: pa.Table) -> pa.Table:
    """The table's rows no stage has dropped (an Arrow filter: no text leaves Arrow)."""
    import pyarrow.compute as pc

    return table.filter(pc.equal(table["status"], KEPT))


def dropped_table(table: pa.Table) -> pa.Table:
    """The table's rows some stage has dropped (the complement of `kept_table`)."""
    import pyarrow.compute as pc

    return table.filter(pc.not_equal(table["status"], KEPT))


def marked_duplicates(table: pa.Table, of: str, status: str) -> pa.Table:
    """The kept rows whose column `of` names a document (not null, not empty) get `status` and
    that document's id in `duplicate_of`; the column `of` is dropped. The table itself when
    it has no column `of` (a partition without duplicates). Arrow throughout: no text
    leaves Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if of not in table.column_names:
        return table
    names = pa.array(table[of]).cast(table.schema.field("duplicate_of").type)
    hit = pc.and_(pc.fill_null(pc.not_equal(names, ""), False), pc.equal(table["status"], KEPT))
    status_type = table.schema.field("status").type
    table = table.set_column(
        table.schema.get_field_index("status"),
        "status",
        pc.if_else(hit, pa.scalar(status, status_type), table["status"]),
    )
    table = table.set_column(
        table.schema.get_field_index("duplicate_of"),
        "duplicate_of",
        pc.if_else(hit, names, table["duplicate_of"]),
    )
    return table.drop_columns([of])


def shed_dropped_text(table: pa.Table) -> pa.Table:
    """The table with the text of its dropped rows emptied and its UTF-8 length in bytes added
    to their `dropped_bytes` (int64, created at 0 when missing), so that the later stages,
    shuffles and checkpoints carry kept text only (on web text most of the bytes read are
    dropped); the stats count a dropped row's bytes from `dropped_bytes`. Idempotent."""
    import pyarrow as pa
    import pyarrow.compute as pc

    dropped = pc.not_equal(table["status"], KEPT)
    text = table["text"]
    shed = pc.fill_null(pc.if_else(dropped, pc.binary_length(text), 0), 0).cast(pa.int64())
    names = table.column_names
    before = (
        table["dropped_bytes"] if "dropped_bytes" in names else pa.nulls(len(table), pa.int64()).fill_null(0)
    )
    table = table.set_column(names.index("text"), "text", pc.if_else(dropped, pa.scalar("", text.type), text))
    counted = pc.add(before, shed)
    if "dropped_bytes" in names:
        return table.set_column(names.index("dropped_bytes"), "dropped_bytes", counted)
    return table.append_column("dropped_bytes", counted)


def utf8_bytes(texts: Iterable[Any]) -> np.ndarray[Any, Any]:
    """The UTF-8 length in bytes of each text: int64, one per text."""
    return np.array([len(str(t).encode("utf-8")) for t in texts], dtype=np.int64)


def score_kept_rows(
    batch: Batch,
    *,
    column: str,
    languages: Collection[str],
    score: Callable[[list[str]], np.ndarray[Any, Any]],
    drop: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
    reason: str,
) -> Batch:
    """A scoring stage's batch: `score` the texts of the kept rows of `languages` (all rows when
    empty; rows without a language too) into float64 `column`, and set status `reason` on the
    scored rows where `drop(scores)` is true. Other rows keep their `column` value (NaN when
    no stage scored them)."""
    status = batch["status"].astype(object)
    n = len(status)
    row_languages = batch["language"] if "language" in batch else np.full(n, "", dtype=object)
    scores = np.asarray(batch.get(column, np.full(n, np.nan)), dtype=np.float64).copy()
    rows = [
        i
        for i in np.flatnonzero(kept_mask(batch))
        if not languages or not row_languages[i] or row_languages[i] in languages
    ]
    scores[rows] = score([str(batch["text"][i]) for i in rows])
    status[np.asarray(rows, dtype=np.int64)[drop(scores[rows])]] = reason
    batch["status"], batch[column] = status, scores
    return batch


def rows_where(batch: Batch, keep: np.ndarray, drop: tuple[str, ...] = ()) -> Batch:
    """The batch's rows where `keep` is true, without the columns `drop`: a filter that leaves
    an emptied block its columns. Ray Data's row `filter` leaves none, and a later groupby
    fails on such a block when it sorts it (`ArrowInvalid: No match for FieldRef.Name(...)`;
    seen when a two-node cluster left one block without a child)."""
    return {column: values[keep] for column, values in batch.items() if column not in drop}


def normalize_text(text: str) -> str:
    """The one form of a text: no leading byte order mark, `\\r\\n` and `\\r` as `\\n`, no
    control characters but `\\n` and `\\t`, Unicode NFC (UAX #15).

    Idempotent. Controls go before composing, so that a base letter and a combining mark
    they separated compose. Text without controls and already in NFC, the common case, costs
    a scan of its UTF-8 bytes and one NFC quick check (~2 and ~6 ms per MB of non-ASCII text).
    """
    text = text.removeprefix(BYTE_ORDER_MARK)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _has_control(text):
        text = CONTROL.sub("", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def _has_control(text: str) -> bool:
    data = text.encode("utf-8", "surrogatepass")
    return len(data.translate(None, C0_DEL_BYTES)) != len(data) or C1_UTF8.search(data) is not None
