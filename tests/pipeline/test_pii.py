"""PII replacement on real Debian documentation (tests/fixtures/cleaning/SOURCE.md) and on
generated addresses: public addresses go, private and reserved ones stay."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from strata.pipeline.pii import (
    EMAIL_PLACEHOLDERS,
    IPV4_PLACEHOLDERS,
    IPV6_PLACEHOLDERS,
    PHONE_PLACEHOLDERS,
    ReplacePii,
)
from strata.spec.cleaning import PiiSpec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cleaning"
DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def _replace(text: str, **spec: bool) -> tuple[str, dict[str, int]]:
    return ReplacePii(PiiSpec(**spec)).replace(text)


def test_maintainer_addresses_in_a_debian_changelog_are_replaced() -> None:
    text = (FIXTURES / "dash-changelog.txt").read_text(encoding="utf-8")
    out, counts = _replace(text)
    assert "andrewsh@debian.org" in text
    assert "@debian.org" not in out
    assert counts["email"] == 2
    assert " -- Andrej Shadura <email@example.com>  Thu, 05 Jan 2023 14:20:48 +0100" in out
    assert " -- Andrej Shadura <firstname.lastname@example.org>  Thu, 05 Jan 2023 14:06:02 +0100" in out
    assert out.replace(EMAIL_PLACEHOLDERS[0], "").replace(EMAIL_PLACEHOLDERS[1], "") == re.sub(
        r"andrewsh@debian\.org", "", text
    )


def test_public_resolvers_are_replaced_and_loopback_stays() -> None:
    text = (FIXTURES / "node-dns.md").read_text(encoding="utf-8")
    out, counts = _replace(text)
    assert counts == {"email": 0, "ipv6": 2, "ipv4": 2}
    assert "8.8.8.8" not in out and "2001:4860:4860::8888" not in out
    assert f"'{IPV4_PLACEHOLDERS[0]}'," in out
    assert f"'{IPV4_PLACEHOLDERS[1]}:1053'," in out  # the port stays
    assert f"'[{IPV6_PLACEHOLDERS[1]}]:1053'," in out
    assert out.count("'127.0.0.1'") == text.count("'127.0.0.1'") == 2
    assert "@stylistic/js/semi" in out  # an @ without a local part is no address


def test_every_public_dns_server_in_systemd_docs_is_replaced() -> None:
    text = (FIXTURES / "systemd-dns.md").read_text(encoding="utf-8")
    out, counts = _replace(text)
    assert counts["ipv4"] == 4 and counts["ipv6"] == 4
    for address in ("1.1.1.1", "8.8.4.4", "2606:4700:4700::1111", "2001:4860:4860::8844"):
        assert address not in out
    assert "Cloudflare and Google Public DNS servers" in out


def test_a_document_rewritten_twice_is_unchanged() -> None:
    text = (FIXTURES / "systemd-dns.md").read_text() + (FIXTURES / "dash-changelog.txt").read_text()
    once, _ = _replace(text)
    assert _replace(once)[0] == once


def test_kinds_switched_off_stay() -> None:
    text = "mail ops@example.net from 8.8.8.8 or call +44 20 7946 0958."
    assert _replace(text, emails=False, ip_addresses=False)[0] == text
    out, counts = _replace(text, phone_numbers=True)
    assert out == f"mail {EMAIL_PLACEHOLDERS[0]} from {IPV4_PLACEHOLDERS[0]} or call {PHONE_PLACEHOLDERS[0]}."
    assert counts == {"email": 1, "ipv6": 0, "ipv4": 1, "phone": 1}


def test_look_alikes_stay() -> None:
    text = "at 10:30:45, MAC 00:1a:2b:3c:4d:5e, x[::2], std::vector, 010.1.2.3, 1.2.3.4.5, v2001:db8::1"
    assert _replace(text, phone_numbers=True)[0] == text


def test_the_stage_replaces_kept_rows_only_and_counts_per_row() -> None:
    batch = {
        "text": np.array(["write to a@b.org or c@d.org", "from 9.9.9.9", "x@y.org"], dtype=object),
        "status": np.array(["", "", "dropped_gopher_too_short"], dtype=object),
    }
    out = ReplacePii(PiiSpec())(batch)
    assert list(out["text"]) == [
        f"write to {EMAIL_PLACEHOLDERS[0]} or {EMAIL_PLACEHOLDERS[1]}",
        f"from {IPV4_PLACEHOLDERS[0]}",
        "x@y.org",
    ]
    assert list(out["pii_email"]) == [2, 0, 0]
    assert list(out["pii_ipv4"]) == [0, 1, 0]


octet = st.integers(0, 255)
ipv4 = st.builds(lambda a, b, c, d: f"{a}.{b}.{c}.{d}", octet, octet, octet, octet)
filler = st.sampled_from(["see", "host", "at", "(", ")", "and", "'", "\n", "-", ","])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ipv4, filler), max_size=12))
def test_no_global_ipv4_of_the_input_remains_and_private_ones_stay(parts: list[str]) -> None:
    text = " ".join(parts)
    out, _ = _replace(text)
    for found in DOTTED_QUAD.findall(out):
        address = ipaddress.ip_address(found)
        public = address.is_global and not address.is_reserved and not address.is_multicast
        assert not public or found in IPV4_PLACEHOLDERS
    for part in parts:
        if DOTTED_QUAD.fullmatch(part) and not ipaddress.ip_address(part).is_global:
            assert part in out


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=6))
@example(ipaddress.IPv6Address("2001:db8::1"))  # a placeholder itself (found by a CI run)
def test_ipv6_is_replaced_exactly_when_public(address: ipaddress.IPv6Address) -> None:
    text = f"server {address} answers"
    out, counts = _replace(text)
    public = address.is_global and not address.is_reserved and not address.is_multicast
    if address.ipv4_mapped or "." in str(address):  # the dotted tail is an IPv4 candidate of its own
        return
    # (The placeholders are documentation addresses, not public: one of them stays as it is.)
    assert out == (f"server {IPV6_PLACEHOLDERS[0]} answers" if public else text)
    assert counts["ipv6"] == int(public)
