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
from collections.abc import Callable
from typing import Any

import numpy as np
import ray
from ray.data.aggregate import Sum

from strata.pipeline.documents import Batch, kept_mask
from strata.spec.cleaning import PiiSpec

EMAIL_PLACEHOLDERS = ("email@example.com", "firstname.lastname@example.org")
IPV4_PLACEHOLDERS = (
    "22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168",
)  # fmt: skip
IPV6_PLACEHOLDERS = ("2001:db8::1", "2001:db8::2")
PHONE_PLACEHOLDERS = ("+1 202 555 0100", "+1 202 555 0199")

# RFC 5322 dot-atom local part starting with a letter or digit (not a quote); a domain of letter-digit-hyphen labels ending in a TLD of letters.
EMAIL = re.compile(
    r"(?<![\w.+-])\w[\w!#$%&'*+/=?^`{|}~-]*(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b(?!@)",
    re.IGNORECASE | re.ASCII,
)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
# Two to seven colons between hexadecimal groups; ipaddress decides whether it is an address.
IPV6 = re.compile(r"(?<![\w:.])(?:[0-9a-f]{1,4}|:)?(?::[0-9a-f]{0,4}){2,7}(?![\w:]|\.\w)", re.IGNORECASE)
# E.164 (at most 15 digits) with a leading +, or the North American (NNN) NNN-NNNN.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}|\(\d{3}\) ?\d{3}-\d{4})(?!\w)")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 8, 15


def _public_ip(candidate: str) -> bool:
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return address.is_global and not address.is_reserved and not address.is_multicast


def _phone(candidate: str) -> bool:
    return MIN_PHONE_DIGITS <= sum(c.isdigit() for c in candidate) <= MAX_PHONE_DIGITS


class Replacer:
    """One kind of PII: a pattern, a check of each match, the placeholders it cycles through."""

    def __init__(
        self,
        kind: str,
        pattern: re.Pattern[str],
        placeholders: tuple[str, ...],
        valid: Callable[[str], bool] | None = None,
        hint: str = "",
    ) -> None:
        self.kind, self.pattern, self.placeholders, self.valid, self.hint = (
            kind,
            pattern,
            placeholders,
            valid,
            hint,
        )

    def replace(self, text: str) -> tuple[str, int]:
        """The text with every valid match replaced, and how many were."""
        if self.hint and self.hint not in text:  # a substring test runs at memory speed
            return text, 0
        count = 0

        def substitute(match: re.Match[str]) -> str:
            nonlocal count
            if self.valid is not None and not self.valid(match.group(0)):
                return match.group(0)
            count += 1
            return self.placeholders[(count - 1) % len(self.placeholders)]

        return self.pattern.sub(substitute, text), count


def build_replacers(spec: PiiSpec) -> list[Replacer]:
    """The replacers the job asks for, e-mails first (an address's domain holds no IP)."""
    replacers = []
    if spec.emails:
        replacers.append(Replacer("email", EMAIL, EMAIL_PLACEHOLDERS, hint="@"))
    if spec.ip_addresses:
        replacers.append(Replacer("ipv6", IPV6, IPV6_PLACEHOLDERS, _public_ip, hint=":"))
        replacers.append(Replacer("ipv4", IPV4, IPV4_PLACEHOLDERS, _public_ip, hint="."))
    if spec.phone_numbers:
        replacers.append(Replacer("phone", PHONE, PHONE_PLACEHOLDERS, _phone))
    return replacers


def count_columns(spec: PiiSpec) -> list[str]:
    """The per-row count columns the stage adds: `pii_<kind>`."""
    return [f"pii_{r.kind}" for r in build_replacers(spec)]


class ReplacePii:
    """Ray Data map_batches stage: replace PII in kept rows; count replacements per row and kind."""

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


def replace_pii(ds: ray.data.Dataset, spec: PiiSpec) -> tuple[ray.data.Dataset, dict[str, Any]]:
    """The rows with PII replaced (materialized: the counts are summed over them), and the report
    `{"replaced": {"pii_<kind>": count}}`."""
    columns = count_columns(spec)
    mapped = ds.map_batches(ReplacePii(spec), batch_format="numpy").materialize()
    sums = (mapped.aggregate(*(Sum(c) for c in columns)) if columns and mapped.count() else None) or {}
    report = {"replaced": {c: int(sums.get(f"sum({c})") or 0) for c in columns}}
    return (mapped.drop_columns(columns) if columns else mapped), report
