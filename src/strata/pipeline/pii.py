"""PII replacement: e-mail addresses and public IP addresses (phone numbers optionally) in
kept documents become fixed placeholders, as FineWeb does (Penedo et al. 2024, with
datatrove's PIIFormatter).

The placeholders are datatrove's: e-mails `email@example.com` and
`firstname.lastname@example.org` (example.com/org are reserved for examples, RFC 2606), and
six IPv4 addresses that answered no ping when datatrove chose them. IPv6 addresses, which
datatrove leaves, become addresses of the documentation prefix 2001:db8::/32 (RFC 3849);
phone numbers become numbers of the 555-01xx range kept for fiction. The k-th replacement
of a kind in a document takes that kind's placeholder k mod its count, so a document is
rewritten the same way in any batch or worker (datatrove cycles one counter per process).

An IP address is replaced only when `ipaddress` calls it global, not reserved and not
multicast: private (10/8, 192.168/16, fc00::/7, ...), loopback, link-local, documentation
and shared ranges are not personal and stay. Candidates that `ipaddress` rejects (leading
zeros, `1.2.3.4.5`, clock times `10:30:00`, MAC addresses) stay too. Each kept row gets the
count of its replacements per kind in columns `pii_<kind>` (the stage sums and drops them).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from strata.pipeline.aggregate import sums
from strata.pipeline.blockwise import Blocks, Rows, blocks_of, map_blocks, numpy_batches, without_columns
from strata.pipeline.documents import Batch, kept_mask
from strata.spec.cleaning import PiiSpec

EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
IPV4_PLACEHOLDERS = (
    "22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168",
)  # fmt: skip
IPV6_PLACEHOLDERS = ("2001:db8::1", "2001:db8::2")
PHONE_PLACEHOLDERS = ("+1 202 555 0100", "+1 202 555 0199")

# RFC 5322 dot-atom local part starting with a letter or digit (not a quote); a domain of
# letter-digit-hyphen labels ending in a top-level domain of letters.
EMAIL = re.compile(
    r"(?<![\w.+-])\w[\w!#$%&'*+/=?^`{|}~-]*(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b(?!@)",
    re.IGNORECASE | re.ASCII,
)
# IP addresses are found from an anchor that starts with a literal, which the regex engine
# finds at memory speed (a pattern led by a look-behind or a character class is tried at every
# position: 50-100x slower on documentation), then grown to the run of address characters
# around it; `ipaddress` decides whether the run is an address.
IPV4_ANCHOR = re.compile(r"\.[0-9]{1,3}\.[0-9]")  # the middle of a.b.c.d
IPV6_ANCHOR = re.compile(r":[0-9a-fA-F]{0,4}:")  # every IPv6 address has two colons this close
IPV4_CHARS = frozenset("0123456789.")
IPV6_CHARS = frozenset("0123456789abcdefABCDEF:")
# E.164 (at most 15 digits) with a leading +, or the North American (NNN) NNN-NNNN.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\) ?\d{3}-\d{4})(?!\w)")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 8, 15

Spans = Callable[[str], Iterator[tuple[int, int]]]


def matches(pattern: re.Pattern[str]) -> Spans:
    """The spans of a pattern's matches."""

    def find(text: str) -> Iterator[tuple[int, int]]:
        for match in pattern.finditer(text):
            yield match.span()

    return find


def runs(anchor: re.Pattern[str], chars: frozenset[str]) -> Spans:
    """The maximal runs of `chars` around each hit of `anchor`, less trailing dots (sentence
    ends), that no letter, digit, underscore or dot precedes and no letter, digit or
    underscore follows (`v1.2.3.4`, `std::vector` are no candidates)."""

    def find(text: str) -> Iterator[tuple[int, int]]:
        pos = 0
        while (hit := anchor.search(text, pos)) is not None:
            start, end = hit.span()
            while start > 0 and text[start - 1] in chars:
                start -= 1
            while end < len(text) and text[end] in chars:
                end += 1
            pos = end
            while text[end - 1] == ".":
                end -= 1
            before = text[start - 1] if start else " "
            after = text[end] if end < len(text) else " "
            if not (before.isalnum() or before in "_." or after.isalnum() or after == "_"):
                yield start, end

    return find


def _public_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return address.is_global and not address.is_reserved and not address.is_multicast


def _phone(candidate: str) -> bool:
    return MIN_PHONE_DIGITS <= sum(c.isdigit() for c in candidate) <= MAX_PHONE_DIGITS


@dataclass(frozen=True, slots=True, kw_only=True)
class Replacer:
    """One kind of PII: where its candidates are, a check of each, the placeholders it cycles."""

    kind: str
    find: Spans
    placeholders: tuple[str, ...]
    valid: Callable[[str], bool] | None = None
    hint: str = ""  # a substring every candidate holds: a text without it is skipped at memory speed

    def replace(self, text: str) -> tuple[str, int]:
        """The text with every valid candidate replaced, and how many were."""
        if self.hint and self.hint not in text:
            return text, 0
        pieces: list[str] = []
        done = count = 0
        for start, end in self.find(text):
            if self.valid is not None and not self.valid(text[start:end]):
                continue
            pieces += [text[done:start], self.placeholders[count % len(self.placeholders)]]
            done, count = end, count + 1
        return ("".join(pieces) + text[done:] if count else text), count


def build_replacers(spec: PiiSpec) -> list[Replacer]:
    """The replacers the job asks for, e-mails first (an address's domain holds no IP)."""
    replacers = []
    if spec.emails:
        replacers.append(
            Replacer(kind="email", find=matches(EMAIL), placeholders=EMAIL_PLACEHOLDERS, hint="@")
        )
    if spec.ip_addresses:
        ipv6 = runs(IPV6_ANCHOR, IPV6_CHARS)
        replacers.append(Replacer(kind="ipv6", find=ipv6, placeholders=IPV6_PLACEHOLDERS, valid=_public_ip))
        ipv4 = runs(IPV4_ANCHOR, IPV4_CHARS)
        replacers.append(Replacer(kind="ipv4", find=ipv4, placeholders=IPV4_PLACEHOLDERS, valid=_public_ip))
    if spec.phone_numbers:
        replacers.append(
            Replacer(kind="phone", find=matches(PHONE), placeholders=PHONE_PLACEHOLDERS, valid=_phone)
        )
    return replacers


def count_columns(spec: PiiSpec) -> list[str]:
    """The per-row count columns the stage adds: `pii_<kind>`."""
    return [f"pii_{r.kind}" for r in build_replacers(spec)]


class ReplacePii:
    """A numpy batch function: replace PII in kept rows; count replacements per row and kind."""

    def __init__(self, spec: PiiSpec) -> None:
        self.replacers = build_replacers(spec)

    def replace(self, text: str) -> tuple[str, dict[str, int]]:
        """The text with its PII replaced, and the replacements per kind."""
        counts: dict[str, int] = {}
        for replacer in self.replacers:
            text, counts[replacer.kind] = replacer.replace(text)
        return text, counts

    def __call__(self, batch: Batch) -> Batch:
        texts = batch["text"].astype(object)
        counts: dict[str, np.ndarray[Any, Any]] = {
            r.kind: np.zeros(len(texts), dtype=np.int64) for r in self.replacers
        }
        for i in np.flatnonzero(kept_mask(batch)):
            texts[i], found = self.replace(str(texts[i]))
            for kind, n in found.items():
                counts[kind][i] = n
        batch["text"] = texts
        return {**batch, **{f"pii_{kind}": column for kind, column in counts.items()}}


def replace_pii(rows: Rows, spec: PiiSpec) -> tuple[Blocks, dict[str, Any]]:
    """The rows with PII replaced (materialized: the counts are summed over them), and the report
    `{"replaced": {"pii_<kind>": count}}`."""
    columns = count_columns(spec)
    mapped = map_blocks(blocks_of(rows), numpy_batches(ReplacePii(spec))).blocks
    report = {"replaced": sums(mapped, columns) if columns else {}}
    return (map_blocks(mapped, without_columns(columns)).blocks if columns else mapped), report
