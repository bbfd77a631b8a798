"""Build the demo corpus (data/demo/corpus.jsonl) from the Python 3.11 documentation.

Source: Debian package ``python3.11-doc`` (reStructuredText sources under
/usr/share/doc/python3.11/html/_sources), licensed under the PSF License Version 2
(see data/demo/SOURCE.md). Each section of a page becomes one document. The script
then plants duplicates, recorded in data/demo/planted.jsonl so tests can check
recall:

- ``exact``: a verbatim copy with changed case and whitespace (caught by the
  normalized-text hash);
- ``near``: a copy with a mirror banner added and about one word in a hundred
  changed (Jaccard of word 5-grams well above 0.8; caught by MinHash).

Run: python scripts/build_demo_corpus.py [--sources DIR] [--out data/demo]
It is deterministic (seeded) so the committed files can be rebuilt byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

SECTIONS = ("tutorial", "reference", "howto", "faq", "library")
HEADING_UNDERLINE = re.compile(r"^([=\-*~^#\"'`+])\1{3,}\s*$")
ROLE = re.compile(r":[a-z:]+:`!?~?([^`<]*?)(?:\s*<[^>]*>)?`")
LITERAL = re.compile(r"``([^`]*)``")
MAX_DOCS = 2200


def clean_rst(lines: list[str]) -> str:
    """Drop directives and comments, unwrap roles and literals; keep prose and examples."""
    out: list[str] = []
    skipping_directive = False
    for line in lines:
        if line.startswith(".. "):
            skipping_directive = True
            continue
        if skipping_directive:
            if line.strip() == "" or line.startswith("   "):
                continue
            skipping_directive = False
        if HEADING_UNDERLINE.match(line):
            continue
        out.append(LITERAL.sub(r"\1", ROLE.sub(r"\1", line)).rstrip())
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_sections(text: str) -> list[tuple[str, list[str]]]:
    """Split an .rst page into (title, lines) at each underlined heading."""
    lines = text.splitlines()
    sections: list[tuple[str, list[str]]] = []
    title, current = "", []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and HEADING_UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()) - 2:
            if current:
                sections.append((title, current))
            title, current = line.strip(), []
            continue
        current.append(line)
    if current:
        sections.append((title, current))
    return sections


def load_documents(sources: Path) -> list[dict[str, str]]:
    docs = []
    for section in SECTIONS:
        for path in sorted((sources / section).rglob("*.rst.txt")):
            rel = path.relative_to(sources).as_posix()
            for index, (title, lines) in enumerate(split_sections(path.read_text("utf-8"))):
                body = clean_rst(lines)
                if len(body) < 200:
                    continue
                heading = ROLE.sub(r"\1", title)
                text = f"{heading}\n\n{body}" if heading else body
                docs.append({"id": f"python-docs/{rel}#{index}", "source": "python-docs", "text": text})
    return docs[:MAX_DOCS]


def perturb(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for i in range(len(words)):
        if rng.random() < 0.01 and words[i].isalpha():
            words[i] = words[i][::-1]
    return "Mirrored from docs.python.org.\n\n" + " ".join(words)


def plant_duplicates(docs: list[dict[str, str]], rng: random.Random) -> tuple[list, list]:
    candidates = [d for d in docs if len(d["text"].split()) >= 150]
    chosen = rng.sample(candidates, 120)
    planted, extra = [], []
    for n, original in enumerate(chosen):
        kind = "exact" if n % 3 == 0 else "near"
        if kind == "exact":
            text = "  " + original["text"].upper().replace("\n", "\n\n") + "\n"
        else:
            text = perturb(original["text"], rng)
        dup = {"id": f"planted/{kind}/{n}", "source": "planted", "text": text}
        extra.append(dup)
        planted.append({"id": dup["id"], "original": original["id"], "kind": kind})
    return planted, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=Path("/usr/share/doc/python3.11/html/_sources"))
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    args = parser.parse_args()
    rng = random.Random(20261127)
    docs = load_documents(args.sources)
    planted, extra = plant_duplicates(docs, rng)
    merged = docs + extra
    rng.shuffle(merged)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc in merged:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    with (args.out / "planted.jsonl").open("w", encoding="utf-8") as f:
        for row in planted:
            f.write(json.dumps(row) + "\n")
    print(f"wrote {len(merged)} documents ({len(extra)} planted duplicates) to {args.out}")


if __name__ == "__main__":
    main()
