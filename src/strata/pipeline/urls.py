"""URL filter: kept documents whose URL is on a block list, or holds a banned word, are dropped.

Block lists are the job's files (`url_filter.blocklists`), one entry a line, `#` starting a
comment. An entry with a `/` is a URL (the scheme may be left out): a document whose URL is
the same, ignoring scheme, letter case of the host, a trailing `/` and the fragment, is
dropped as `blocked_url`. Any other entry is a domain: a document is dropped as
`blocked_domain` when its host's registrable domain (the public-suffix-aware "eTLD+1",
e.g. `bbc.co.uk` for `news.bbc.co.uk`) or the host, or any domain between the two, is listed;
so `example.com` blocks every site under it and `ads.example.com` that one subtree. Registrable
domains come from tldextract with the Public Suffix List snapshot its package ships (ICANN
section; no download). An entry that is itself a public suffix (`co.uk`) would block
thousands of sites and is refused. Banned words (`url_filter.banned_words`) are matched on
the URL's tokens: its lower-cased runs of letters and digits, as datatrove's URLFilter does.

Documents without a URL (text files, JSONL records without `url`) pass; the stage reports
how many (`no_url`). The block lists are read on the driver and carried to the workers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import tldextract

from strata.errors import SpecError
from strata.pipeline.documents import Batch, kept_mask
from strata.spec.cleaning import UrlFilterSpec

logger = logging.getLogger(__name__)
TOKEN = re.compile(r"[a-z0-9]+")
NO_URL = "url_filter_no_url"


def _extractor() -> tldextract.TLDExtract:
    """The Public Suffix List snapshot inside the tldextract package: no download, no cache."""
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), include_psl_private_domains=False)


def url_key(url: str) -> str:
    """A URL as block lists compare it: host lower-cased, no scheme, port kept, no fragment,
    no trailing `/`; a URL that does not parse (a bad port, an open `[`) compares as written."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url
    host = (parts.hostname or "").rstrip(".")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{parts.path}".rstrip("/") + query


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def load_blocklists(paths: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """(domains, URL keys) of the block list files; SpecError for an entry that is a public suffix."""
    extract = _extractor()
    domains: set[str] = set()
    urls: set[str] = set()
    for path in paths:
        for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            entry = line.split("#", 1)[0].strip().lower()
            if not entry:
                continue
            if "/" in entry:
                urls.add(url_key(entry))
                continue
            domain = entry.removeprefix("*.").rstrip(".")
            parts = extract(domain)
            if not parts.domain:
                raise SpecError(
                    f"url_filter.blocklists: {path}:{line_no}: {entry!r} is a public suffix, which would block "
                    "every site under it; list the sites' domains instead"
                )
            domains.add(domain)
    logger.info("url filter: %d domains and %d URLs from %d lists", len(domains), len(urls), len(paths))
    return frozenset(domains), frozenset(urls)


class FilterUrls:
    """Per-row stage: drop kept rows by their `url`; mark the rows without one."""

    def __init__(self, spec: UrlFilterSpec) -> None:
        self.domains, self.urls = load_blocklists(spec.blocklists)
        self.banned = frozenset(spec.banned_words)
        self._extract: tldextract.TLDExtract | None = None  # built on the worker: it is 1 MB loaded

    def _domain_listed(self, host: str) -> bool:
        if self._extract is None:
            self._extract = _extractor()
        registrable = self._extract(host).top_domain_under_public_suffix or host
        if registrable in self.domains:
            return True
        labels = host.split(".")
        depth = registrable.count(".") + 1
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - depth))

    def reason(self, url: str) -> str:
        """Why the URL is dropped ("blocked_domain", "blocked_url", "banned_word"), or ""."""
        host = _host(url)
        if self.domains and host and self._domain_listed(host):
            return "blocked_domain"
        if self.urls and url_key(url) in self.urls:
            return "blocked_url"
        if self.banned and not self.banned.isdisjoint(TOKEN.findall(url.lower())):
            return "banned_word"
        return ""

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        urls = batch["url"]
        no_url = np.zeros(len(status), dtype=np.int64)
        if not (self.domains or self.urls or self.banned):  # nothing to match: no row is judged
            return {**batch, NO_URL: no_url}
        for i in np.flatnonzero(kept_mask(batch)):
            url = str(urls[i])
            if not url:
                no_url[i] = 1
                continue
            why = self.reason(url)
            if why:
                status[i] = f"dropped_url_filter_{why}"
        batch["status"] = status
        return {**batch, NO_URL: no_url}
