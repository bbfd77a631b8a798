"""Build data/multilingual/debian-reference.warc.gz from the Debian Reference packages.

Usage (on Debian 12, with network access to the Debian mirror):
    apt-get download debian-reference-{en,de,es,fr,it,ja}
    for f in debian-reference-*.deb; do dpkg-deb -x "$f" pkg; done
    python scripts/build_multilingual_corpus.py pkg/usr/share/debian-reference

Each page becomes a WARC response record (HTTP 200, text/html; charset=utf-8) whose
target URI is the page's address on www.debian.org; the record dates are fixed, so the
file rebuilds byte for byte. See data/multilingual/SOURCE.md.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

PAGES = ["pr01", "apa"]
LANGUAGES = ["en", "de", "es", "fr", "it", "ja"]
URL = "https://www.debian.org/doc/manuals/debian-reference/{name}"
DATE = "2023-02-04T00:00:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("data/multilingual/debian-reference.warc.gz"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for page in PAGES:
            for language in LANGUAGES:
                name = f"{page}.{language}.html"
                body = (args.html_dir / name).read_bytes()
                http = StatusAndHeaders(
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )
                record = writer.create_warc_record(
                    URL.format(name=name),
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=http,
                    warc_headers_dict={
                        "WARC-Date": DATE,
                        "WARC-Record-ID": f"<urn:debian-reference:{name}>",
                    },
                )
                writer.write_record(record)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
