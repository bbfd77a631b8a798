"""Does a set of CIDRs let the whole internet in? One answer for the spec and the policy pack.

Refusing only `0.0.0.0/0` and `::/0` misses the same opening written in pieces
(`0.0.0.0/1` + `128.0.0.0/1`, or 256 /8s). A set is open to the internet when the
union of its networks holds every public address of a family, where public means
what may appear as a source on the internet:

- IPv4: everything except the blocks the IANA IPv4 Special-Purpose Address Registry
  (RFC 6890, RFC 8190) marks as not globally reachable, multicast (224.0.0.0/4,
  RFC 5771) and the reserved 240.0.0.0/4 (RFC 1112, with 255.255.255.255).
- IPv6: the global unicast space 2000::/3 (IANA IPv6 Address Space, RFC 4291) less
  its documentation prefixes 2001:db8::/32 (RFC 3849) and 3fff::/20 (RFC 9637).

So `[0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/3]` (all of 0.x to 223.x) and `2000::/3` are refused,
while a set missing any public /32 (or /128) is not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NOT_PUBLIC_IPV4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", RFC 791
        "10.0.0.0/8",  # private, RFC 1918
        "100.64.0.0/10",  # shared address space (carrier-grade NAT), RFC 6598
        "127.0.0.0/8",  # loopback, RFC 1122
        "169.254.0.0/16",  # link local, RFC 3927
        "172.16.0.0/12",  # private, RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments, RFC 6890
        "192.0.2.0/24",  # documentation TEST-NET-1, RFC 5737
        "192.88.99.0/24",  # deprecated 6to4 relay anycast, RFC 7526
        "192.168.0.0/16",  # private, RFC 1918
        "198.18.0.0/15",  # benchmarking, RFC 2544
        "198.51.100.0/24",  # documentation TEST-NET-2, RFC 5737
        "203.0.113.0/24",  # documentation TEST-NET-3, RFC 5737
        "224.0.0.0/4",  # multicast, RFC 5771
        "240.0.0.0/4",  # reserved and limited broadcast, RFC 1112, RFC 919
    )
)
NOT_PUBLIC_IPV6 = (
    *ipaddress.IPv6Network("::/0").address_exclude(ipaddress.IPv6Network("2000::/3")),
    ipaddress.IPv6Network("2001:db8::/32"),  # documentation, RFC 3849
    ipaddress.IPv6Network("3fff::/20"),  # documentation, RFC 9637
)


def public_families_covered(cidrs: Iterable[str]) -> list[str]:
    """The families ('IPv4', 'IPv6') every public address of which lies in the union of `cidrs`.

    An empty list means the set leaves some public address out. Host bits are
    ignored (`1.2.3.4/0` is `0.0.0.0/0`); a string that is no CIDR raises ValueError.
    """
    networks = [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]
    covered = []
    for family, version, not_public in (("IPv4", 4, NOT_PUBLIC_IPV4), ("IPv6", 6, NOT_PUBLIC_IPV6)):
        mine: list[IPNetwork] = [n for n in networks if n.version == version]
        if not mine:
            continue
        union = list(ipaddress.collapse_addresses([*mine, *not_public]))
        if len(union) == 1 and union[0].prefixlen == 0:
            covered.append(family)
    return covered


def open_to_internet_message(cidrs: Iterable[str]) -> str | None:
    """Why `cidrs` open a port to the whole internet, or None if they do not."""
    cidrs = list(cidrs)
    families = public_families_covered(cidrs)
    if not families:
        return None
    shown = ", ".join(cidrs[:4]) + (f", … ({len(cidrs)} in all)" if len(cidrs) > 4 else "")
    verb = "covers" if len(cidrs) == 1 else "together cover"
    return f"{shown} {verb} every public {' and '.join(families)} address"
