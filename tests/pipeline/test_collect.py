"""Collect from a local HTTP server on loopback laid out like Common Crawl (a path list, then
WARC files) plus plain URLs, with 503s, a 429 with Retry-After and a missing file: one rate
limit for all workers, retries, a report, resume, and the collected files read by the pipeline."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from strata.pipeline.collect import collect
from strata.pipeline.read import input_files
from strata.pipeline.run import run_pipeline
from strata.spec.pipeline import CollectSpec, InputSpec, PipelineJob

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_cluster")]
CRAWL = "CC-MAIN-2026-01"
RATE = 8.0


def split_warc(records_per_file: int) -> list[bytes]:
    """The multilingual WARC's 12 records as several WARC.gz files."""
    files: list[bytes] = []
    with open("data/multilingual/debian-reference.warc.gz", "rb") as handle:
        buffer, writer = io.BytesIO(), None
        for n, record in enumerate(ArchiveIterator(handle)):
            if n % records_per_file == 0:
                if writer is not None:
                    files.append(buffer.getvalue())
                buffer = io.BytesIO()
                writer = WARCWriter(buffer, gzip=True)
            assert writer is not None
            writer.write_record(record)
        files.append(buffer.getvalue())
    return files


class Server:
    """Serves `routes`; the first GET of every file answers 503, the second GET of one file 429."""

    def __init__(self, routes: dict[str, bytes]) -> None:
        self.routes = routes
        self.log: list[tuple[float, str, int]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    seen = sum(1 for _, p, _ in server.log if p == self.path)
                    status = 200
                    if self.path not in server.routes:
                        status = 404
                    elif seen == 0 and not self.path.endswith(".paths.gz"):
                        status = 503
                    elif seen == 1 and self.path.endswith("00001.warc.gz"):
                        status = 429
                    server.log.append((time.time(), self.path, status))
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                body = server.routes[self.path] if status == 200 else b""
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server() -> Iterator[Server]:
    warcs = split_warc(4)
    paths = [f"crawl-data/{CRAWL}/segments/1/warc/part-{i:05d}.warc.gz" for i in range(len(warcs))]
    routes = {f"/{p}": data for p, data in zip(paths, warcs, strict=True)}
    routes[f"/crawl-data/{CRAWL}/warc.paths.gz"] = gzip.compress("\n".join(paths).encode())
    lines = Path("data/demo/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:50]
    routes["/exports/docs.jsonl.gz"] = gzip.compress(("\n".join(lines) + "\n").encode())
    s = Server(routes)
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def spec(server: Server, root: Path) -> CollectSpec:
    return CollectSpec(
        dir=str(root),
        common_crawl=[{"crawl": CRAWL, "files": "warc", "base_url": server.url}],
        urls=[f"{server.url}/exports/docs.jsonl.gz", f"{server.url}/exports/missing.jsonl.gz"],
        requests_per_second=RATE,
        max_retries=3,
        backoff_s=0.2,
        timeout_s=10,
    )


def test_collect_retries_under_one_rate_limit_and_resumes(server: Server, tmp_path: Path) -> None:
    report = collect(spec(server, tmp_path / "raw"), tmp_path / "collect.json")
    assert (report["downloaded"], report["present"], report["failed"]) == (4, 0, 1)
    failed = next(f for f in report["files"] if f["status"] == "failed")
    assert failed["url"].endswith("missing.jsonl.gz") and "404" in failed["error"]
    statuses = [status for _, _, status in server.log]
    assert statuses.count(503) == 4 and statuses.count(429) == 1 and statuses.count(404) == 1
    # Every request, from every worker, kept the shared limit: the limiter's slots are
    # 1 / RATE apart, and no request reached the server before its slot (sorted arrivals
    # are each at or after the slot of the same rank). A worker that wakes late sends late;
    # that lowers the rate and is allowed.
    slots = sorted(t for record in report["listings"] + report["files"] for t in record.get("sent", []))
    arrivals = sorted(t for t, _, _ in server.log)
    assert len(slots) == len(arrivals)
    assert min(b - a for a, b in itertools.pairwise(slots)) >= 1 / RATE - 1e-6  # float ulp at 1.8e9 s
    assert all(arrived >= slot for arrived, slot in zip(arrivals, slots, strict=True))
    # The 429's Retry-After (1 s) was honoured before that file's next request.
    part1 = [t for t, p, _ in server.log if p.endswith("00001.warc.gz")]
    assert part1[2] - part1[1] >= 1.0
    assert json.loads((tmp_path / "collect.json").read_text()) == report

    requests = len(server.log)
    again = collect(spec(server, tmp_path / "raw"), tmp_path / "collect.json")
    assert (again["downloaded"], again["present"], again["failed"]) == (0, 4, 1)
    # Only the path list and the missing file are asked for again (a 404 is not retried).
    assert [p for _, p, _ in server.log[requests:]] == [
        f"/crawl-data/{CRAWL}/warc.paths.gz",
        "/exports/missing.jsonl.gz",
    ]
    assert not list((tmp_path / "raw").rglob("*.part"))


def test_pipeline_reads_what_it_collected(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "tool.py").write_text("print('a source file is a document too')\n")
    git("init", "--quiet", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "first", cwd=repo)
    sources = spec(server, tmp_path / "raw").model_dump() | {"git": [{"url": f"file://{repo}"}]}
    job = PipelineJob.model_validate(
        {
            "kind": "pipeline",
            "name": "collected",
            "collect": sources,
            "language": {"min_score": 0.5},
            "tokenizer": {"vocab_size": 1024},
            "output": {"dir": str(tmp_path / "out")},
        }
    )
    stats = run_pipeline(job)
    assert stats["documents"]["total"] == 12 + 50 + 1
    assert json.loads((tmp_path / "out" / "stats" / "collect.json").read_text())["downloaded"] == 4 + 1


def git(*args: str, cwd: Path) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_code_repository_is_cloned_once_and_its_sources_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("def main() -> None:\n    print('hello')\n")
    (repo / "README.md").write_text("A tiny project.\n")
    (repo / "logo.png").write_bytes(b"\x89PNG")
    git("init", "--quiet", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "first", cwd=repo)
    spec = CollectSpec(dir=str(tmp_path / "raw"), git=[{"url": f"file://{repo}"}], backoff_s=0)
    report = collect(spec, tmp_path / "collect.json")
    (entry,) = report["files"]
    assert entry["status"] == "cloned" and entry["commit"] == git("rev-parse", "HEAD", cwd=repo)
    assert collect(spec, tmp_path / "collect.json")["files"][0]["status"] == "present"
    files = input_files(InputSpec(paths=[str(tmp_path / "raw")]))
    assert sorted(Path(f).name for f in files) == ["README.md", "app.py"]  # no .git internals, no image
    missing = CollectSpec(
        dir=str(tmp_path / "raw2"), git=[{"url": f"file://{tmp_path}/nowhere"}], max_retries=1, backoff_s=0
    )
    assert collect(missing, tmp_path / "c2.json")["failed"] == 1
