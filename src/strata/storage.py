"""Files and folders on a local disk or on object storage (`s3://`), through fsspec.

A `Location` is a folder or a file named by a local path or a URL. Locally it keeps the
guarantees of strata.files: a file is written under a temporary name and renamed over the
target, so a reader sees the old file or the whole new one. On object storage an object
appears only when its upload (one PUT, or one multipart upload) completes, so a file is
written in place and is still whole or absent. Folders do not exist there: writing a file
needs no folder, and nothing here creates one (s3fs's `makedirs` would create a missing
bucket).

Credentials never travel with a location: each process that opens one (the driver, a Ray
worker) reads them itself from the standard AWS variables, profile or instance role, as
botocore does. `refused` turns object storage's errors into a JobError naming the URL.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec

from strata.errors import JobError
from strata.files import atomic_path, atomic_write

CREDENTIALS_HINT = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role"


def is_remote(url: str) -> bool:
    """Whether `url` names object storage (any fsspec protocol but the local file system)."""
    return "://" in url and not url.startswith("file://")


def refused(url: str, error: Exception) -> JobError:
    """A JobError naming `url` for an error of the storage behind it."""
    if isinstance(error, PermissionError):
        return JobError(
            f"{url}: access denied ({error}); check the credentials ({CREDENTIALS_HINT}) and the "
            "bucket's policy"
        )
    if isinstance(error, FileNotFoundError):
        return JobError(f"{url}: no such object, prefix or bucket")
    return JobError(f"{url}: {type(error).__name__}: {error}")


@dataclass(frozen=True, slots=True)
class Location:
    """A file or folder: a local path or an object-storage URL (`s3://bucket/prefix`)."""

    url: str

    @classmethod
    def of(cls, where: Location | Path | str) -> Location:
        return where if isinstance(where, Location) else cls(str(where))

    def __truediv__(self, name: str) -> Location:
        return Location(f"{self.url.rstrip('/')}/{name}")

    def __str__(self) -> str:
        return self.url

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def is_local(self) -> bool:
        return not is_remote(self.url)

    def local_path(self) -> Path:
        """The path on this machine; JobError for object storage."""
        if not self.is_local:
            raise JobError(f"{self.url}: needs a local path here, not object storage")
        return Path(self.url.removeprefix("file://"))

    def _fs(self) -> tuple[Any, str]:
        fs, path = fsspec.core.url_to_fs(self.url)
        return fs, str(path)

    def exists(self) -> bool:
        fs, path = self._fs()
        return bool(fs.exists(path))

    def read_bytes(self) -> bytes:
        fs, path = self._fs()
        return bytes(fs.cat_file(path))

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def write_bytes(self, data: bytes) -> None:
        """Write the whole file: atomically by rename locally (parent folders made), one PUT remotely."""
        if self.is_local:
            local = self.local_path()
            local.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(local, data)
        else:
            fs, path = self._fs()
            fs.pipe_file(path, data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    @contextlib.contextmanager
    def open_write(self) -> Iterator[IO[bytes]]:
        """A binary stream whose data becomes the file when the block succeeds, as a whole."""
        if self.is_local:
            local = self.local_path()
            local.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(local) as tmp, tmp.open("wb") as stream:
                yield stream
        else:
            fs, path = self._fs()
            stream = fs.open(path, "wb")
            try:
                yield stream
            except BaseException:
                stream.discard()  # fsspec's own __exit__ would upload what was written so far
                stream.closed = True
                raise
            stream.close()

    def open_read(self) -> IO[bytes]:
        fs, path = self._fs()
        stream: IO[bytes] = fs.open(path, "rb")
        return stream

    def names(self) -> list[str]:
        """The names of the files in this folder, sorted; [] when there is none."""
        fs, path = self._fs()
        fs.invalidate_cache(path)  # files that other processes wrote since the last listing
        if not fs.isdir(path):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))

    def remove(self) -> None:
        fs, path = self._fs()
        fs.rm_file(path)

    def remove_tree(self) -> None:
        """Remove the folder and everything under it; nothing when it is absent."""
        if self.is_local:
            shutil.rmtree(self.local_path(), ignore_errors=True)
            return
        fs, path = self._fs()
        fs.invalidate_cache(path)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def rename(self, target: Location) -> None:
        """Move a file (locally a rename; on object storage a server-side copy, then a delete)."""
        if self.is_local:
            self.local_path().replace(target.local_path())
        else:
            fs, path = self._fs()
            fs.mv(path, target._fs()[1])

    def check_writable(self) -> None:
        """Write and remove a small file here, so that a denied or missing bucket is refused
        before any work; JobError names the location."""
        probe = self / ".strata-write-check"
        try:
            probe.write_bytes(b"")
            probe.remove()
        except OSError as error:
            raise refused(self.url, error) from None
