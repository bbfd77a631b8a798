"""Main-text extraction from HTML with trafilatura, under a per-document time limit.

Extraction runs in a child process, one per worker process. When a document takes longer
than `timeout_s`, the child is killed and replaced, the document is dropped as
`dropped_extract_timeout`, and the worker goes on: a pathological page cannot hang it.
A page with no main text is dropped as `dropped_extract_no_text`. The main text is
normalized like text on read (HTML entities can spell CR, controls or decomposed letters).
"""

from __future__ import annotations

import logging
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from strata.pipeline.documents import Batch, kept_mask, normalize_text
from strata.pipeline.read import HTML, TEXT
from strata.spec.pipeline import ExtractSpec

logger = logging.getLogger(__name__)
READY = "ready"


def _serve(conn: Connection, favor_precision: bool) -> None:
    """Child process: extract each HTML page received until the pipe closes."""
    import trafilatura

    conn.send(READY)  # imported: from here on, only extraction counts against the time limit
    while True:
        try:
            html = conn.recv()
        except EOFError:
            return
        text = trafilatura.extract(
            html, favor_precision=favor_precision, include_comments=False, include_tables=False
        )
        conn.send(normalize_text(text or ""))  # entities can spell any form: the one form again


class _Extractor:
    """The extraction child process of one setting, started when first needed."""

    def __init__(self, favor_precision: bool) -> None:
        self.favor_precision = favor_precision
        self._context = multiprocessing.get_context("spawn")
        self._child: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        parent, child = self._context.Pipe()
        self._child = self._context.Process(target=_serve, args=(child, self.favor_precision), daemon=True)
        self._child.start()
        child.close()
        if parent.recv() != READY:  # start-up (importing trafilatura) is not a document's time
            raise RuntimeError("the extraction process did not start")
        self._conn = parent
        return parent

    def _stop(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.join()
        if self._conn is not None:
            self._conn.close()
        self._child, self._conn = None, None

    def extract(self, html: str, timeout_s: float) -> str | None:
        """The page's main text ("" when it has none), or None when it ran past the time limit."""
        conn = self._conn or self._start()
        conn.send(html)
        if conn.poll(timeout_s):
            try:
                return str(conn.recv())
            except EOFError:  # the child died (e.g. out of memory): treat like a timeout
                pass
        self._stop()
        return None


# One child per worker process and setting, kept for the process's life: every group task
# builds its own stage, and starting Python with trafilatura per task cost about a second a
# file on inputs of one page per file. The child exits when its worker does (its pipe closes).
_EXTRACTORS: dict[bool, _Extractor] = {}


class ExtractMainText:
    """Per-row stage: replace HTML rows' text with their main text."""

    def __init__(self, spec: ExtractSpec) -> None:
        self.spec = spec

    def extract(self, html: str) -> str | None:
        """The page's main text ("" when it has none), or None when it ran past `timeout_s`."""
        extractor = _EXTRACTORS.get(self.spec.favor_precision)
        if extractor is None:
            extractor = _EXTRACTORS[self.spec.favor_precision] = _Extractor(self.spec.favor_precision)
        return extractor.extract(html, self.spec.timeout_s)

    def __call__(self, batch: Batch) -> Batch:
        status = batch["status"].astype(object)
        texts = batch["text"].astype(object)
        content = batch["content"].astype(object)
        for i in np.flatnonzero(kept_mask(batch) & (content == HTML)):
            text = self.extract(str(texts[i]))
            if text is None:
                logger.warning(
                    "extraction of %s ran past %.1f s; dropped", batch["id"][i], self.spec.timeout_s
                )
                status[i], texts[i] = "dropped_extract_timeout", ""
            elif not text.strip():
                status[i], texts[i] = "dropped_extract_no_text", ""
            else:
                texts[i], content[i] = text, TEXT
        batch["status"], batch["text"], batch["content"] = status, texts, content
        return batch
