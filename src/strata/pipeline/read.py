"""Read input files into document rows; bad records are quarantined, never fatal.

One reader per format, chosen from the file name (or the job's `input.format`) through two
tables: strata.spec.pipeline.FORMAT_SUFFIXES (suffix → format) and READERS here (format →
reader). JSONL (`.jsonl`, `.json`, optionally `.gz` or `.zst`), Parquet, plain text and HTML
files (`.txt`, `.md`, `.html`: one document per file), WARC/WET (`.warc`, `.wet`, optionally
`.gz`, framed by strata.pipeline.warc, records parsed with warcio) and Wikipedia XML dumps
(`.xml`, `.xml.bz2`: articles, wikitext made plain by strata.pipeline.wikitext). Files are
opened through fsspec, so `s3://` URIs work (s3fs; `gs://` too where gcsfs is installed);
the driver lists them before any work, refusing a missing object or prefix and a denied
bucket by URI, and each worker opens its files with its own environment's credentials.

Rows of WARC records keep their `WARC-Target-URI`, and JSONL/Parquet rows their record's
`url` field, in `url` ("" when there is none). Every row has a stable `id`: the record's id field when the job names one, else the
source and record offset (`path:line` for JSONL, `path#row` for Parquet, the
WARC-Record-ID for WARC, the path for text files, `path#page-id` for Wikipedia). The
index lines of Wikipedia's CirrusSearch JSON dumps are not documents and are skipped.
Text is normalized on read (strata.pipeline.documents.normalize_text; a leading byte order
mark goes too). Of WARC records, only responses, resources and conversions whose media type
is in `input.content_types` are documents; the others of those types are counted as
`quarantined_content_type_<type>`. A record that is not valid UTF-8 or JSON, holds a lone
surrogate (`invalid_unicode`), lacks text, has empty text, exceeds `max_doc_bytes`, has a
wrong WARC Content-Length (`bad_content_length`), or fails in any other way (`record_error`)
becomes a row with status `quarantined_<reason>` and a `detail` naming its source and offset;
a file that ends early (a truncated gzip or zstd stream, an unreadable Parquet file) adds one
`quarantined_truncated_file` or `quarantined_unreadable_file` row and keeps what was
read before.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader

from strata.errors import JobError
from strata.pipeline.documents import KEPT, normalize_text
from strata.pipeline.warc import WarcRecord, warc_records
from strata.pipeline.wikitext import pages, plain_text
from strata.spec.pipeline import SUFFIX_HINT, InputSpec, format_from_name
from strata.storage import refused

logger = logging.getLogger(__name__)
Row = dict[str, Any]
RECORDS_PER_FILE = 1_000_000_000  # order = file index * this + record number
HTML = "html"
TEXT = "text"
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DOCUMENT_RECORDS = ("response", "conversion", "resource")  # WARC types that can hold a document
UTF8_BOM = b"\xef\xbb\xbf"
NOT_A_SLUG = re.compile(r"[^a-z0-9]+")
RECORD_LOADER = ArcWarcRecordLoader()  # parses one framed record: HTTP headers, chunked and encoded bodies


def detect_format(path: str) -> str:
    """The reader a file name implies: jsonl, parquet, text (also HTML and code), warc or mediawiki."""
    fmt = format_from_name(path)
    if fmt is None:
        raise JobError(
            f"{path}: cannot tell the format from the name; name it {SUFFIX_HINT}, or set input.format"
        )
    return fmt


def _decompressed(raw: IO[bytes], path: str) -> IO[bytes]:
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".bz2"):
        return bz2.BZ2File(raw)
    if path.endswith(".zst"):
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


def media_type(content_type: str) -> str:
    """`text/html; charset=utf-8` → `text/html`."""
    return content_type.split(";", 1)[0].strip().lower()


def _accepts(types: list[str], media: str) -> bool:
    major = media.split("/", 1)[0]
    return media in types or f"{major}/*" in types


TRUNCATED = (EOFError, gzip.BadGzipFile, zlib.error, zstandard.ZstdError)
CIRRUS_INDEX_KEYS = {"index"}  # Wikipedia CirrusSearch dumps: an index line before each page


class DocumentReader:
    """Ray Data flat_map stage: one input row {path, file_index} → its documents."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec

    def __call__(self, item: dict[str, Any]) -> Iterator[Row]:
        path, file_index = str(item["path"]), int(item["file_index"])
        fmt = self.spec.format if self.spec.format != "auto" else detect_format(path)
        base = file_index * RECORDS_PER_FILE
        count = 0
        for row in READERS[fmt](self, path):
            row["order"] = base + count
            count += 1
            yield row
        logger.info("read %d records from %s", count, path)

    def _row(self, *, doc_id: str, source: str, where: str, text: str, status: str = KEPT) -> Row:
        """A document row; its text normalized, or a quarantined row without text."""
        if status == KEPT:
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON escape "\ud83d"
                status = "quarantined_invalid_unicode"
            else:
                text = normalize_text(text)
                if size > self.spec.max_doc_bytes:
                    status = "quarantined_too_large"
                elif not text.strip():
                    status = "quarantined_empty_text"
        content = self.spec.content if self.spec.content != "auto" else TEXT
        return {
            "id": doc_id,
            "source": source,
            "text": text if status == KEPT else "",
            "content": content,
            "status": status,
            "detail": where,
            "url": "",  # set by the readers of records that carry one (strata.pipeline.urls)
        }

    def _quarantined(self, path: str, where: str, reason: str, doc_id: str = "") -> Row:
        return self._row(
            doc_id=doc_id or where, source=path, where=where, text="", status=f"quarantined_{reason}"
        )

    def _guarded(self, make: Callable[[], Row], path: str, where: str) -> Row:
        """One record's row; any error while making it quarantines that record alone."""
        try:
            return make()
        except Exception as error:  # a record the code did not foresee must not end the job
            logger.warning("%s: %s: %s; quarantined as record_error", where, type(error).__name__, error)
            return self._quarantined(path, where, "record_error")

    def _broken_file(self, path: str, where: str, reason: str, error: Exception) -> Row:
        logger.warning("%s: %s (%s); keeping the records read before it", where, reason, error)
        return self._quarantined(path, where, reason)

    # JSONL ---------------------------------------------------------------------------------
    def _read_jsonl(self, path: str) -> Iterator[Row]:
        line_no = 0
        with fsspec.open(path, "rb") as raw:
            stream = _decompressed(raw, path)
            try:
                for line_no, line_with_bom in enumerate(stream, start=1):
                    line = line_with_bom.removeprefix(UTF8_BOM)  # at the file's start, or a joined file's
                    if line.strip() and not _is_cirrus_index(line):
                        where = f"{path}:{line_no}"
                        yield self._guarded(lambda: self._parse_json(line, path, where), path, where)  # noqa: B023
            except TRUNCATED as error:
                yield self._broken_file(path, f"{path}:{line_no + 1}", "truncated_file", error)

    def _parse_json(self, raw: bytes, path: str, where: str) -> Row:
        if len(raw) > self.spec.max_doc_bytes:
            return self._quarantined(path, where, "too_large")
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return self._quarantined(path, where, "invalid_utf8")
        except json.JSONDecodeError:
            return self._quarantined(path, where, "invalid_json")
        return self._from_record(record, path, where)

    def _from_record(self, record: Any, path: str, where: str) -> Row:
        value = record.get(self.spec.text_key) if isinstance(record, dict) else None
        if not isinstance(value, str):
            return self._quarantined(path, where, "no_text")
        key = self.spec.id_key
        doc_id = str(record[key]) if key and record.get(key) is not None else where
        row = self._row(doc_id=doc_id, source=str(record.get("source") or path), where=where, text=value)
        if isinstance(record.get("url"), str):
            row["url"] = record["url"]
        return row

    # Wikipedia XML dumps --------------------------------------------------------------------
    def _read_mediawiki(self, path: str) -> Iterator[Row]:
        count = 0
        with fsspec.open(path, "rb") as raw:
            try:
                for page_id, _, wikitext in pages(_decompressed(raw, path)):
                    count += 1
                    where = f"{path}#{page_id}"
                    yield self._guarded(
                        lambda: self._row(doc_id=where, source=path, where=where, text=plain_text(wikitext)),  # noqa: B023
                        path,
                        where,
                    )
            except (*TRUNCATED, ParseError) as error:
                yield self._broken_file(path, f"{path}#after-page-{count}", "truncated_file", error)

    # Parquet -------------------------------------------------------------------------------
    def _read_parquet(self, path: str) -> Iterator[Row]:
        row_no = 0
        try:
            with fsspec.open(path, "rb") as raw:
                for batch in pq.ParquetFile(raw).iter_batches(batch_size=1024):
                    for record in batch.to_pylist():
                        where = f"{path}#{row_no}"
                        yield self._guarded(lambda: self._from_record(record, path, where), path, where)  # noqa: B023
                        row_no += 1
        except (pa.ArrowException, OSError) as error:
            yield self._broken_file(path, f"{path}#{row_no}", "unreadable_file", error)

    # Plain text ----------------------------------------------------------------------------
    def _read_text(self, path: str) -> Iterator[Row]:
        with fsspec.open(path, "rb") as raw:
            stream = _decompressed(raw, path)
            try:
                data = stream.read()
            except TRUNCATED as error:
                yield self._broken_file(path, path, "truncated_file", error)
                return
        yield self._guarded(lambda: self._from_text_file(data, path), path, path)

    def _from_text_file(self, data: bytes, path: str) -> Row:
        if len(data) > self.spec.max_doc_bytes:
            return self._quarantined(path, path, "too_large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._quarantined(path, path, "invalid_utf8")
        row = self._row(doc_id=path, source=path, where=path, text=text)
        if self.spec.content == "auto" and path.lower().removesuffix(".gz").endswith((".html", ".htm")):
            row["content"] = HTML
        return row

    # WARC / WET ----------------------------------------------------------------------------
    def _read_warc(self, path: str) -> Iterator[Row]:
        if path.lower().removesuffix(".gz").endswith(".arc"):
            yield from self._read_arc(path)
            return
        offset = 0
        with fsspec.open(path, "rb") as raw:
            try:
                for record in warc_records(_decompressed(raw, path), self.spec.max_doc_bytes):
                    offset = record.offset
                    row = self._from_warc_record(record, path)
                    if row is not None:
                        yield row
            except TRUNCATED as error:
                yield self._broken_file(path, f"{path}@{offset}", "truncated_file", error)

    def _from_warc_record(self, record: WarcRecord, path: str) -> Row | None:
        """The record's row; None for records that are not documents (requests, metadata, ...)."""
        where = f"{path}@{record.offset}"
        doc_id = record.headers.get("warc-record-id", "")
        if record.problem:
            logger.warning("%s: %s; quarantined, reading on from the next record", where, record.problem)
            return self._quarantined(path, where, record.problem, doc_id)
        if record.headers.get("warc-type") not in DOCUMENT_RECORDS:
            return None
        if record.block is None:
            return self._quarantined(path, where, "too_large", doc_id)
        stream = BufferedReader(io.BytesIO(record.head + record.block))
        return self._guarded(
            lambda: self._from_warc(
                RECORD_LOADER.parse_record_stream(stream, known_format="warc"), where, path
            ),
            path,
            where,
        )

    def _read_arc(self, path: str) -> Iterator[Row]:
        """ARC files (the Internet Archive's format before WARC), record by record with warcio."""
        offset = 0
        with fsspec.open(path, "rb") as raw:
            records = ArchiveIterator(raw, arc2warc=True)
            try:
                for record in records:
                    if record.rec_type not in DOCUMENT_RECORDS:
                        continue
                    payload = record.content_stream().read(self.spec.max_doc_bytes + 1)
                    offset = records.get_record_offset()
                    where = f"{path}@{offset}"
                    yield self._guarded(lambda: self._from_warc(record, where, path, payload), path, where)  # noqa: B023
            except (ArchiveLoadFailed, *TRUNCATED) as error:
                yield self._broken_file(path, f"{path}@{offset}", "truncated_file", error)

    def _from_warc(self, record: Any, where: str, path: str, payload: bytes | None = None) -> Row:
        """A warcio record's row: documents of the job's media types, the others counted by type."""
        headers = record.rec_headers
        url = headers.get_header("WARC-Target-URI") or where
        doc_id = headers.get_header("WARC-Record-ID") or where
        source = str(url.split("/")[2]) if "://" in url else path
        typed = record.http_headers if record.rec_type == "response" and record.http_headers else headers
        media = media_type(typed.get_header("Content-Type") or "")
        if not _accepts(self.spec.content_types, media):
            reason = f"content_type_{NOT_A_SLUG.sub('_', media).strip('_')[:40] or 'none'}"
            return self._row(
                doc_id=doc_id, source=source, where=where, text="", status=f"quarantined_{reason}"
            )
        if payload is None:
            payload = record.content_stream().read(self.spec.max_doc_bytes + 1)
        if len(payload) > self.spec.max_doc_bytes:
            return self._row(
                doc_id=doc_id, source=source, where=where, text="", status="quarantined_too_large"
            )
        is_html = media in HTML_TYPES
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            if not is_html:  # HTML without UTF-8 is usually Windows-1252 or Latin-1; the extractor copes
                return self._row(
                    doc_id=doc_id, source=source, where=where, text="", status="quarantined_invalid_utf8"
                )
            text = _decode_legacy(payload)
        row = self._row(doc_id=doc_id, source=source, where=where, text=text)
        row["url"] = headers.get_header("WARC-Target-URI") or ""
        if self.spec.content == "auto":
            row["content"] = HTML if is_html else TEXT
        return row


def _decode_legacy(payload: bytes) -> str:
    """Windows-1252 where it decodes (its 0x80-0x9F are quotes and dashes), else Latin-1."""
    try:
        return payload.decode("cp1252")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


# Format → reader; the format of a file name comes from strata.spec.pipeline.FORMAT_SUFFIXES.
READERS: dict[str, Callable[[DocumentReader, str], Iterator[Row]]] = {
    "jsonl": DocumentReader._read_jsonl,
    "parquet": DocumentReader._read_parquet,
    "text": DocumentReader._read_text,
    "warc": DocumentReader._read_warc,
    "mediawiki": DocumentReader._read_mediawiki,
}


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
        try:
            files.extend(_files_at(path, spec))
        except OSError as error:  # object storage: a denied or missing bucket, a network error
            raise refused(path, error) from None
    if not files:
        raise JobError(
            f"input.paths {spec.paths} hold no files of a known format ({SUFFIX_HINT}); "
            "set input.format to read others"
        )
    return files


def _files_at(path: str, spec: InputSpec) -> list[str]:
    """The files of one entry of input.paths: itself, or a folder's (a prefix's) files."""
    fs, root = fsspec.core.url_to_fs(path)
    if not fs.isdir(root):
        if not fs.isfile(root):
            raise JobError(f"input.paths: {path}: no such file, folder, object or prefix")
        file = path if "://" in path else str(root)
        if spec.format == "auto":
            detect_format(file)  # fails now, naming the file, rather than inside a worker
        return [file]
    # Hidden files and folders (.git, .cache, ...) are not documents.
    found = sorted(
        f for f in fs.find(root) if not any(part.startswith(".") for part in f[len(root) :].split("/"))
    )
    found = [fs.unstrip_protocol(f) if "://" in path else f for f in found]
    readable = [f for f in found if spec.format != "auto" or format_from_name(f) is not None]
    if len(readable) < len(found):
        logger.info("%s: skipping %d files of unknown format", path, len(found) - len(readable))
    return readable
