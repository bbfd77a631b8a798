"""Collect: download the job's sources into `collect.dir` before reading them.

Sources: a Common Crawl crawl (its `wet.paths.gz` or `warc.paths.gz` list, then the
files it names), plain URLs (Wikipedia dump files, JSONL or Parquet exports, ...) and
code repositories (a shallow `git clone`, recorded with its commit).
Downloads run as Ray tasks; every request first asks one rate-limiter actor for its
slot, so the limit holds for all workers together. A 429 or 5xx answer, or a broken
connection, is retried with exponential backoff (honouring `Retry-After`), up to
`max_retries`; a file that still fails is recorded in the report and skipped, so
one bad file never stops the job. A file is written under a temporary name and
renamed; a rerun skips files already there, so an interrupted collect resumes. The
report (`stats/collect.json` of the job's output) lists every file with its size and
SHA-256, or its error, and every request (the crawls' path lists too) with `sent`: the
wall-clock time of each attempt's slot, at or just before which it was sent.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from strata.spec.pipeline import CollectSpec, GitSource
from strata.storage import Location

logger = logging.getLogger(__name__)
RETRIED_STATUS = {429, 500, 502, 503, 504}
CHUNK = 1 << 20


@ray.remote(num_cpus=0)
class RateLimiter:
    """Hands out request slots at most `rate` per second, to every worker alike.

    A slot is a wall-clock time (`time.time()`, the same clock on every node of a cluster
    kept in sync by NTP), not a delay: a caller whose answer arrives late still sends at
    its slot, so the round trip to this actor does not bunch requests together.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_free = 0.0

    def reserve(self) -> float:
        """The wall-clock time (s since the epoch) at which the caller may send its request."""
        slot = max(time.time(), self.next_free)
        self.next_free = slot + self.interval
        return slot


@dataclass(frozen=True, slots=True)
class Download:
    """One file to fetch: its URL and where it goes under collect.dir."""

    url: str
    relative_path: str


def _get(url: str, limiter: Any, spec: CollectSpec, sent: list[float]) -> bytes:
    """GET with the shared rate limit and retries; raise the last error when out of retries.
    Appends each attempt's slot (the wall-clock time it was sent at, or just after) to `sent`."""
    attempt = 0
    while True:
        slot = ray.get(limiter.reserve.remote())
        time.sleep(max(0.0, slot - time.time()))
        sent.append(slot)
        try:
            # Only http(s): the spec refuses other schemes for urls and base_url.
            with urllib.request.urlopen(url, timeout=spec.timeout_s) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            if error.code not in RETRIED_STATUS or attempt == spec.max_retries:
                raise
            retry_after = error.headers.get("Retry-After", "")
            delay = float(retry_after) if retry_after.isdigit() else spec.backoff_s * 2**attempt
            reason = f"HTTP {error.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            if attempt == spec.max_retries:
                raise
            delay, reason = spec.backoff_s * 2**attempt, str(error)
        logger.info("GET %s: %s; retry %d in %.1f s", url, reason, attempt + 1, delay)
        time.sleep(delay)
        attempt += 1


@ray.remote(num_cpus=0.25)
def _fetch(item: Download, root: str, limiter: Any, spec: CollectSpec) -> dict[str, Any]:
    dest = Path(root) / item.relative_path
    if dest.is_file():
        return {"url": item.url, "path": str(dest), "bytes": dest.stat().st_size, "status": "present"}
    sent: list[float] = []
    try:
        data = _get(item.url, limiter, spec, sent)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        logger.warning("giving up on %s: %s", item.url, error)
        return {"url": item.url, "path": str(dest), "status": "failed", "error": str(error), "sent": sent}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return {
        "url": item.url,
        "path": str(dest),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "status": "downloaded",
        "sent": sent,
    }


def _plan(spec: CollectSpec, limiter: Any, listings: list[dict[str, Any]]) -> list[Download]:
    """Every file the sources name (a crawl's path list is fetched here, through the limiter,
    and recorded in `listings` with its attempts' send times)."""
    files: list[Download] = []
    for source in spec.common_crawl:
        listing = f"{source.base_url}/crawl-data/{source.crawl}/{source.files}.paths.gz"
        sent: list[float] = []
        listings.append({"url": listing, "sent": sent})
        paths = gzip.decompress(_get(listing, limiter, spec, sent)).decode("utf-8").split()
        chosen = paths[: source.max_files] if source.max_files else paths
        logger.info("%s: %d of %d %s files", source.crawl, len(chosen), len(paths), source.files)
        files += [Download(f"{source.base_url}/{p}", p) for p in chosen]
    for url in spec.urls:
        name = url.split("://", 1)[1]
        files.append(Download(url, f"urls/{name}"))
    return files


def _clone(source: GitSource, root: Path, spec: CollectSpec) -> dict[str, Any]:
    """Shallow clone into root/git/<host and path>; retried with backoff; skipped when present."""
    dest = root / "git" / source.url.split("://", 1)[1].removesuffix(".git").strip("/")
    report: dict[str, Any] = {"url": source.url, "path": str(dest)}
    if not (dest / ".git").is_dir():
        tmp = dest.with_name(dest.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        command = [
            "git",
            "clone",
            "--quiet",
            "--depth",
            "1",
            *(["--branch", source.ref] if source.ref else []),
        ]
        for attempt in range(spec.max_retries + 1):
            result = subprocess.run(
                [*command, source.url, str(tmp)], capture_output=True, text=True, check=False
            )
            if result.returncode == 0:
                tmp.rename(dest)
                report["status"] = "cloned"
                break
            shutil.rmtree(tmp, ignore_errors=True)
            if attempt == spec.max_retries:
                logger.warning("giving up on %s: %s", source.url, result.stderr.strip())
                return {**report, "status": "failed", "error": result.stderr.strip()}
            time.sleep(spec.backoff_s * 2**attempt)
    else:
        report["status"] = "present"
    head = subprocess.run(
        ["git", "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return {**report, "commit": head.stdout.strip()}


def collect(spec: CollectSpec, report_path: Location | Path) -> dict[str, Any]:
    """Download every source file into spec.dir; return the report, also written to report_path."""
    root = Path(spec.dir)
    root.mkdir(parents=True, exist_ok=True)
    limiter = RateLimiter.remote(spec.requests_per_second)  # type: ignore[attr-defined]
    listings: list[dict[str, Any]] = []
    files = _plan(spec, limiter, listings)
    pending = [_fetch.remote(f, str(root), limiter, spec) for f in files]
    results = []
    started = time.monotonic()
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results.append(ray.get(done[0]))
        logger.info("collect: %d/%d files (%.0f s)", len(results), len(files), time.monotonic() - started)
    for source in spec.git:
        (root / "git").mkdir(exist_ok=True)
        results.append(_clone(source, root, spec))
    results.sort(key=lambda r: r["path"])
    report = {
        "listings": listings,
        "files": results,
        "downloaded": sum(r["status"] in ("downloaded", "cloned") for r in results),
        "present": sum(r["status"] == "present" for r in results),
        "failed": sum(r["status"] == "failed" for r in results),
    }
    Location.of(report_path).write_text(json.dumps(report, indent=2))
    if report["failed"]:
        logger.warning("collect: %d files failed after retries; see %s", report["failed"], report_path)
    return report
