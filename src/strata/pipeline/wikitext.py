"""Wikipedia's XML dumps (`*-pages-articles*.xml.bz2`): articles, and their wikitext as plain text.

`pages(stream)` walks a MediaWiki export with a streaming parser and yields the
articles (namespace 0, not redirects) as (page id, title, wikitext). `plain_text` is a
light conversion: templates, tables, references, files, comments and tags are removed,
links keep their label, bold/italic quotes and heading marks are dropped. It is not a
full wikitext parser (infobox text and nested constructs beyond templates can leak),
which is why the quality filters still run after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO
from xml.etree.ElementTree import iterparse

COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.DOTALL | re.IGNORECASE)
TABLE = re.compile(r"^\{\|.*?^\|\}", re.DOTALL | re.MULTILINE)
FILE_LINK = re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.IGNORECASE)
LINK = re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]")
EXTERNAL_LINK = re.compile(r"\[https?://\S+ ([^\]]*)\]")
TAG = re.compile(r"<[^>]+>")
HEADING = re.compile(r"^=+\s*(.*?)\s*=+\s*$", re.MULTILINE)
QUOTES = re.compile(r"'{2,}")
BLANK_LINES = re.compile(r"\n{3,}")


def _without_templates(text: str) -> str:
    """Remove {{...}} blocks, nested ones included."""
    out, depth, i = [], 0, 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair == "{{":
            depth, i = depth + 1, i + 2
        elif pair == "}}" and depth:
            depth, i = depth - 1, i + 2
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def plain_text(wikitext: str) -> str:
    """Readable text of an article's wikitext."""
    text = COMMENT.sub("", wikitext)
    text = REF.sub("", text)
    text = _without_templates(text)
    text = TABLE.sub("", text)
    text = FILE_LINK.sub("", text)
    text = LINK.sub(r"\1", text)
    text = EXTERNAL_LINK.sub(r"\1", text)
    text = TAG.sub("", text)
    text = HEADING.sub(r"\1", text)
    text = QUOTES.sub("", text)
    return BLANK_LINES.sub("\n\n", text).strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def pages(stream: IO[bytes]) -> Iterator[tuple[str, str, str]]:
    """(page id, title, wikitext) of every article in a MediaWiki XML export."""
    page: dict[str, str] = {}
    redirect = False
    for _, element in iterparse(stream, events=("end",)):
        name = _local(element.tag)
        if name in ("title", "ns", "text") or (name == "id" and "id" not in page):
            page[name] = element.text or ""
        elif name == "redirect":
            redirect = True
        elif name == "page":
            if page.get("ns") == "0" and not redirect:
                yield page.get("id", ""), page.get("title", ""), page.get("text", "")
            page, redirect = {}, False
            element.clear()
