"""Read input files into document rows; bad records are quarantined, never fatal.

One reader per format, chosen from the file name (or the job's `input.format`):
JSONL (`.jsonl`, `.json`, optionally `.gz` or `.zst`), Parquet, plain text and HTML files
(`.txt`, `.md`, `.html`: one document per file), WARC/WET (`.warc`, `.wet`, optionally
`.gz`, read with warcio) and Wikipedia XML dumps (`.xml`, `.xml.bz2`: articles, wikitext
made plain by strata.pipeline.wikitext). Files are opened through fsspec, so `s3://`
and `gs://` URIs work where the matching fsspec backend (s3fs, gcsfs) is installed.

Every row has a stable `id`: the record's id field when the job names one, else the
source and record offset (`path:line` for JSONL, `path#row` for Parquet, the
WARC-Record-ID for WARC, the path for text files, `path#page-id` for Wikipedia). The
index lines of Wikipedia's CirrusSearch JSON dumps are not documents and are skipped. A record that is not valid UTF-8
or JSON, lacks text, has empty text or exceeds `max_doc_bytes` becomes a row with
status `quarantined_<reason>` and a `detail` naming its source and offset; a file that
ends early (a truncated gzip or zstd stream, an unreadable Parquet file) adds one
`quarantined_truncated_file` or `quarantined_unreadable_file` row and keeps what was
read before.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import zlib
from collections.abc import Iterator
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from strata.pipeline.documents import KEPT
from strata.pipeline.wikitext import pages, plain_text
from strata.spec.pipeline import InputSpec

logger = logging.getLogger(__name__)
RECORDS_PER_FILE = 1_000_000_000  # order = file index * this + record number
HTML = "html"
TEXT = "text"
# Source files read as text documents (code repositories).
CODE_SUFFIXES = (".py", ".js", ".ts", ".go", ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".kt",
                 ".rb", ".php", ".sh", ".swift", ".scala", ".cs", ".lua", ".jl", ".sql", ".rst")  # fmt: skip


def detect_format(path: str) -> str:
    """The reader a file name implies: jsonl, parquet, text (also HTML and code), warc or mediawiki."""
    name = path.lower().removesuffix(".gz").removesuffix(".zst").removesuffix(".bz2")
    for suffix, fmt in ((".jsonl", "jsonl"), (".json", "jsonl"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return fmt
    if name.endswith((".warc", ".wet", ".arc")):
        return "warc"
    if name.endswith(".xml"):
        return "mediawiki"
    if name.endswith((".txt", ".md", ".text", ".html", ".htm", *CODE_SUFFIXES)):
        return "text"
    raise ValueError(
        f"{path}: cannot tell the format from the name; use .jsonl/.parquet/.txt/.html/.warc/.wet/.xml "
        "(optionally .gz, .zst or .bz2) or set input.format"
    )


def _decompressed(raw: IO[bytes], path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".bz2"):
        return bz2.BZ2File(raw)
    if path.endswith(".zst"):
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


TRUNCATED = (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError)
CIRRUS_INDEX_KEYS = {"index"}  # Wikipedia CirrusSearch dumps: an index line before each page


class DocumentReader:
    """Ray Data flat_map stage: one input row {path, file_index} → its documents."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec

    def __call__(self, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
        path, file_index = str(item["path"]), int(item["file_index"])
        fmt = self.spec.format if self.spec.format != "auto" else detect_format(path)
        base = file_index * RECORDS_PER_FILE
        count = 0
        for row in getattr(self, f"_read_{fmt}")(path):
            row["order"] = base + count
            count += 1
            yield row
        logger.info("read %d records from %s", count, path)

    def _row(self, *, doc_id: str, source: str, where: str, text: str, status: str = KEPT) -> dict[str, Any]:
        if status == KEPT and len(text.encode("utf-8")) > self.spec.max_doc_bytes:
            status = "quarantined_too_large"
        elif status == KEPT and not text.strip():
            status = "quarantined_empty_text"
        content = self.spec.content if self.spec.content != "auto" else TEXT
        return {
            "id": doc_id,
            "source": source,
            "text": text if status == KEPT else "",
            "content": content,
            "status": status,
            "detail": where,
        }

    def _broken_file(self, path: str, where: str, reason: str, error: Exception) -> dict[str, Any]:
        logger.warning("%s: %s (%s); keeping the records read before it", where, reason, error)
        return self._row(doc_id=where, source=path, where=where, text="", status=f"quarantined_{reason}")

    # JSONL ---------------------------------------------------------------------------------
    def _read_jsonl(self, path: str) -> Iterator[dict[str, Any]]:
        line_no = 0
        with fsspec.open(path, "rb") as raw:
            stream = _decompressed(raw, path)
            try:
                for line_no, line in enumerate(stream, start=1):
                    if line.strip() and not _is_cirrus_index(line):
                        yield self._parse_json(line, path, line_no)
            except TRUNCATED as error:
                yield self._broken_file(path, f"{path}:{line_no + 1}", "truncated_file", error)

    def _parse_json(self, raw: bytes, path: str, line_no: int) -> dict[str, Any]:
        where = f"{path}:{line_no}"
        if len(raw) > self.spec.max_doc_bytes:
            return self._row(doc_id=where, source=path, where=where, text="", status="quarantined_too_large")
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._row(
                doc_id=where, source=path, where=where, text="", status="quarantined_invalid_utf8"
            )
        except json.JSONDecodeError:
            return self._row(
                doc_id=where, source=path, where=where, text="", status="quarantined_invalid_json"
            )
        return self._from_record(record, path, where)

    def _from_record(self, record: Any, path: str, where: str) -> dict[str, Any]:
        value = record.get(self.spec.text_key) if isinstance(record, dict) else None
        if not isinstance(value, str):
            return self._row(doc_id=where, source=path, where=where, text="", status="quarantined_no_text")
        key = self.spec.id_key
        doc_id = str(record[key]) if key and record.get(key) is not None else where
        return self._row(doc_id=doc_id, source=str(record.get("source") or path), where=where, text=value)

    # Wikipedia XML dumps --------------------------------------------------------------------
    def _read_mediawiki(self, path: str) -> Iterator[dict[str, Any]]:
        count = 0
        with fsspec.open(path, "rb") as raw:
            try:
                for page_id, _, wikitext in pages(_decompressed(raw, path)):
                    count += 1
                    where = f"{path}#{page_id}"
                    yield self._row(doc_id=where, source=path, where=where, text=plain_text(wikitext))
            except (*TRUNCATED, ParseError) as error:
                yield self._broken_file(path, f"{path}#after-page-{count}", "truncated_file", error)

    # Parquet -------------------------------------------------------------------------------
    def _read_parquet(self, path: str) -> Iterator[dict[str, Any]]:
        row_no = 0
        try:
            with fsspec.open(path, "rb") as raw:
                for batch in pq.ParquetFile(raw).iter_batches(batch_size=1024):
                    for record in batch.to_pylist():
                        yield self._from_record(record, path, f"{path}#{row_no}")
                        row_no += 1
        except (pa.ArrowException, OSError) as error:
            yield self._broken_file(path, f"{path}#{row_no}", "unreadable_file", error)

    # Plain text ----------------------------------------------------------------------------
    def _read_text(self, path: str) -> Iterator[dict[str, Any]]:
        with fsspec.open(path, "rb") as raw:
            stream = _decompressed(raw, path)
            try:
                data = stream.read()
            except TRUNCATED as error:
                yield self._broken_file(path, path, "truncated_file", error)
                return
        if len(data) > self.spec.max_doc_bytes:
            yield self._row(doc_id=path, source=path, where=path, text="", status="quarantined_too_large")
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            yield self._row(doc_id=path, source=path, where=path, text="", status="quarantined_invalid_utf8")
            return
        row = self._row(doc_id=path, source=path, where=path, text=text)
        if self.spec.content == "auto" and path.lower().removesuffix(".gz").endswith((".html", ".htm")):
            row["content"] = HTML
        yield row

    # WARC / WET ----------------------------------------------------------------------------
    def _read_warc(self, path: str) -> Iterator[dict[str, Any]]:
        offset = 0
        with fsspec.open(path, "rb") as raw:
            records = ArchiveIterator(raw)
            try:
                for record in records:
                    if record.rec_type not in ("response", "conversion", "resource"):
                        continue
                    payload = record.content_stream().read(self.spec.max_doc_bytes + 1)
                    offset = records.get_record_offset()  # valid once the record was read
                    unread = getattr(record.raw_stream, "limit", 0)
                    if len(payload) <= self.spec.max_doc_bytes and unread > 0:  # the file ends mid-record
                        raise EOFError(f"record ends {unread} bytes early")
                    yield self._from_warc(record, payload, f"{path}@{offset}", path)
            except (ArchiveLoadFailed, *TRUNCATED) as error:
                yield self._broken_file(path, f"{path}@{offset}", "truncated_file", error)

    def _from_warc(self, record: Any, payload: bytes, where: str, path: str) -> dict[str, Any]:
        headers = record.rec_headers
        url = headers.get_header("WARC-Target-URI") or where
        doc_id = headers.get_header("WARC-Record-ID") or where
        source = str(url.split("/")[2]) if "://" in url else path
        if len(payload) > self.spec.max_doc_bytes:
            return self._row(
                doc_id=doc_id, source=source, where=where, text="", status="quarantined_too_large"
            )
        is_html = record.rec_type == "response" and "html" in (
            record.http_headers.get_header("Content-Type", "") if record.http_headers else ""
        )
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            if not is_html:  # HTML without UTF-8 is usually Latin-1; the extractor copes
                return self._row(
                    doc_id=doc_id, source=source, where=where, text="", status="quarantined_invalid_utf8"
                )
            text = payload.decode("latin-1")
        row = self._row(doc_id=doc_id, source=source, where=where, text=text)
        if self.spec.content == "auto":
            row["content"] = HTML if is_html else TEXT
        return row


def _is_cirrus_index(line: bytes) -> bool:
    if not line.lstrip().startswith(b'{"index"'):
        return False
    try:
        return set(json.loads(line)) == CIRRUS_INDEX_KEYS
    except (ValueError, TypeError):
        return False


def input_files(spec: InputSpec) -> list[str]:
    """Every file the job reads, in a stable order: folders are walked, URIs listed with fsspec.

    In a folder, files whose format the name does not tell (images, stylesheets, ...) are
    skipped and counted in the log; a file named in `input.paths` must have a known format.
    """
    files: list[str] = []
    for path in spec.paths:
        fs, root = fsspec.core.url_to_fs(path)
        if not fs.isdir(root):
            file = path if "://" in path else str(root)
            if spec.format == "auto":
                detect_format(file)  # fails now, naming the file, rather than inside a worker
            files.append(file)
            continue
        # Hidden files and folders (.git, .cache, ...) are not documents.
        found = sorted(
            f for f in fs.find(root) if not any(part.startswith(".") for part in f[len(root) :].split("/"))
        )
        found = [fs.unstrip_protocol(f) if "://" in path else f for f in found]
        readable = [f for f in found if spec.format != "auto" or _known_format(f)]
        if len(readable) < len(found):
            logger.info("%s: skipping %d files of unknown format", path, len(found) - len(readable))
        files.extend(readable)
    if not files:
        raise ValueError(f"input.paths {spec.paths} hold no files of a known format")
    return files


def _known_format(path: str) -> bool:
    try:
        detect_format(path)
    except ValueError:
        return False
    return True
