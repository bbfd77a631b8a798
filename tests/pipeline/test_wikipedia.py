"""Wikipedia's XML dumps: articles only, wikitext made plain, a cut dump keeps the pages before
the cut; CirrusSearch JSON dumps: index lines are not documents."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

from strata.pipeline.read import DocumentReader
from strata.pipeline.wikitext import plain_text
from strata.spec.pipeline import InputSpec

# As in real dumps, the wikitext's own tags arrive escaped inside <text>.
DUMP = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">
  <siteinfo><dbname>testwiki</dbname></siteinfo>
  <page><title>Alpha</title><ns>0</ns><id>12</id>
    <revision><id>900</id><text>'''Alpha''' is the [[Greek alphabet|first letter]].{{Infobox letter|name={{lang|el|α}}}}
== History ==
It came from [[Phoenicia]].&lt;ref&gt;A source.&lt;/ref&gt; See [https://example.org the site].
[[File:Alpha.svg|thumb|A [[glyph]]]]
{| class="wikitable"
| cell
|}</text></revision></page>
  <page><title>Talk:Alpha</title><ns>1</ns><id>13</id><revision><id>901</id><text>talk</text></revision></page>
  <page><title>A</title><ns>0</ns><id>14</id><redirect title="Alpha" /><revision><id>902</id><text>#REDIRECT [[Alpha]]</text></revision></page>
  <page><title>Beta</title><ns>0</ns><id>15</id><revision><id>903</id><text>Beta follows alpha.</text></revision></page>
</mediawiki>
"""


def read(path: Path) -> list[dict[str, object]]:
    spec = InputSpec.model_construct(
        paths=[str(path)], format="auto", content="auto", text_key="text", id_key="id", max_doc_bytes=10**6
    )
    return list(DocumentReader(spec)({"path": str(path), "file_index": 0}))


def test_articles_of_a_dump_as_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "testwiki-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(DUMP.encode()))
    rows = read(path)
    assert [r["id"] for r in rows] == [f"{path}#12", f"{path}#15"]  # no talk page, no redirect
    assert rows[0]["text"] == ("Alpha is the first letter.\nHistory\nIt came from Phoenicia. See the site.")
    assert rows[1]["text"] == "Beta follows alpha."


def test_cut_dump_keeps_the_pages_before_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_text(DUMP[: DUMP.index("<page><title>Beta")] + "<page><title>Be")
    rows = read(path)
    assert [r["status"] for r in rows] == ["", "quarantined_truncated_file"]


def test_plain_text_removes_nested_templates_and_comments() -> None:
    assert plain_text("a {{x|{{y}}|z}} b <!-- note --> ''c''") == "a  b  c"


def test_cirrus_index_lines_are_not_documents(tmp_path: Path) -> None:
    lines = [
        {"index": {"_type": "_doc", "_id": "12"}},
        {"title": "Alpha", "text": "Alpha is the first letter.", "namespace": 0},
        {"index": {"_type": "_doc", "_id": "15"}},
        {"title": "Beta", "text": "Beta follows alpha.", "namespace": 0},
    ]
    path = tmp_path / "enwiki-cirrussearch-content.json.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    rows = read(path)
    assert [r["text"] for r in rows] == ["Alpha is the first letter.", "Beta follows alpha."]
    assert [r["id"] for r in rows] == [f"{path}:2", f"{path}:4"]
