"""WARC record framing that survives a wrong Content-Length (WARC 1.1, ISO 28500 section 4).

A record is `WARC/1.x` header lines, a blank line, Content-Length bytes of block, then
`\\r\\n\\r\\n`. When the bytes after a block are not that separator followed by the next
`WARC/1.` header (or the end of the file), the declared length is wrong: too large, the
block swallowed the next header; too small, it ends inside its own text. Either way the
record is returned with `problem="bad_content_length"` and reading resumes at the next
`\\r\\n\\r\\nWARC/1.` after the block's start, so one bad record hides no other. A file that
ends inside a record raises EOFError. The stream is the decompressed file: a gzip WARC
compressed per record or as a whole reads alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

MAGIC = b"WARC/1."
SEPARATOR = b"\r\n\r\n"
NEXT_RECORD = SEPARATOR + MAGIC
CHUNK_BYTES = 1 << 18
BAD_CONTENT_LENGTH = "bad_content_length"
NOT_A_RECORD = "invalid_record"


@dataclass(frozen=True, slots=True, kw_only=True)
class WarcRecord:
    """One record: its offset in the decompressed stream, its header block (raw, with the
    blank line), its lower-cased headers and its block (None when larger than the limit)."""

    offset: int
    head: bytes
    headers: dict[str, str]
    block: bytes | None
    problem: str = ""


class _Buffer:
    """A read buffer over a stream that can push bytes back and search ahead."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.read = getattr(stream, "read1", stream.read)  # one underlying read: a cut keeps what came before
        self.data = bytearray()
        self.offset = 0  # stream position of data[0]

    def fill(self, size: int) -> bool:
        """Buffer at least `size` bytes; False when the stream ends first."""
        while len(self.data) < size:
            chunk = self.read(max(CHUNK_BYTES, size - len(self.data)))
            if not chunk:
                return False
            self.data += chunk
        return True

    def take(self, size: int) -> bytes:
        out = bytes(self.data[:size])
        del self.data[:size]
        self.offset += len(out)
        return out

    def skip(self, size: int) -> bool:
        """Drop `size` bytes without holding them; False when the stream ends first."""
        while size > 0:
            if not self.data and not self.fill(1):
                return False
            size -= len(self.take(size))
        return True

    def find(self, pattern: bytes) -> int:
        """Index of `pattern` in the buffer, reading ahead as needed; -1 at the end of the stream."""
        start = 0
        while (index := self.data.find(pattern, start)) < 0:
            start = max(0, len(self.data) - len(pattern) + 1)
            if not self.fill(len(self.data) + 1):
                return -1
        return index

    def push_back(self, data: bytes) -> None:
        self.data[:0] = data
        self.offset -= len(data)


def warc_records(stream: IO[bytes], max_block_bytes: int) -> Iterator[WarcRecord]:
    """Every record of a WARC stream, in order; see the module docstring for bad lengths."""
    buffer = _Buffer(stream)
    while True:
        while buffer.fill(1) and buffer.data[0] in b"\r\n":  # blank lines between records
            buffer.take(1)
        if not buffer.data:
            return
        offset = buffer.offset
        end = buffer.find(SEPARATOR)
        if not buffer.data.startswith(MAGIC) or end < 0:
            if end < 0 and buffer.data.startswith(MAGIC):
                raise EOFError(f"the file ends inside the header of the record at byte {offset}")
            yield WarcRecord(offset=offset, head=b"", headers={}, block=None, problem=NOT_A_RECORD)
            _resync(buffer)
            continue
        head = buffer.take(end + len(SEPARATOR))
        headers = _headers(head)
        length = headers.get("content-length", "")
        if not length.isdigit():
            yield WarcRecord(
                offset=offset, head=head, headers=headers, block=None, problem=BAD_CONTENT_LENGTH
            )
            _resync(buffer)
            continue
        size = int(length)
        block: bytes | None = None
        if size <= max_block_bytes:
            if not buffer.fill(size):
                raise EOFError(f"the record at byte {offset} ends {size - len(buffer.data)} bytes early")
            block = buffer.take(size)
        elif not buffer.skip(size):
            raise EOFError(f"the record at byte {offset} ends early")
        if _at_next_record(buffer):
            yield WarcRecord(offset=offset, head=head, headers=headers, block=block)
            continue
        yield WarcRecord(offset=offset, head=head, headers=headers, block=None, problem=BAD_CONTENT_LENGTH)
        if block is not None:
            buffer.push_back(block)
        _resync(buffer)


def _headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _at_next_record(buffer: _Buffer) -> bool:
    """Whether the block just read is followed by a line end and then the next record header or
    the end of the file (a missing or doubled separator is tolerated)."""
    i = 0
    while buffer.fill(i + 1) and buffer.data[i] in b"\r\n":
        i += 1
    if len(buffer.data) <= i:
        return True  # only line ends up to the end of the file
    return i > 0 and buffer.fill(i + len(MAGIC)) and buffer.data[i : i + len(MAGIC)] == MAGIC


def _resync(buffer: _Buffer) -> None:
    """Drop bytes up to the next record header (all of them when there is none)."""
    index = buffer.find(NEXT_RECORD)
    if index < 0:
        buffer.skip(len(buffer.data))
    else:
        buffer.take(index + len(SEPARATOR))
