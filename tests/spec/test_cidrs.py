"""The whole internet is refused however it is written: in one CIDR, in halves, in 256 pieces, in IPv6."""

from __future__ import annotations

import ipaddress

import pytest

from strata.errors import SpecError
from strata.spec import load_spec
from strata.spec.cidrs import NOT_PUBLIC_IPV4, public_families_covered

SLASH_8S = [f"{i}.0.0.0/8" for i in range(256)]


def _public_ipv4_pieces() -> list[str]:
    """0.0.0.0/0 minus every private and reserved block: exactly the public space, in pieces."""
    pieces = [ipaddress.IPv4Network("0.0.0.0/0")]
    for hole in NOT_PUBLIC_IPV4:
        pieces = [
            p for piece in pieces for p in (piece.address_exclude(hole) if hole.subnet_of(piece) else [piece])
        ]
    return [str(p) for p in pieces]


@pytest.mark.parametrize(
    ("cidrs", "families"),
    [
        (["0.0.0.0/0"], ["IPv4"]),
        (["0.0.0.0/1", "128.0.0.0/1"], ["IPv4"]),
        (SLASH_8S, ["IPv4"]),
        ([c for c in SLASH_8S if c != "255.0.0.0/8"], ["IPv4"]),  # 255/8 is reserved, not public
        (["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"], ["IPv4"]),  # all unicast 0.x to 223.x
        (_public_ipv4_pieces(), ["IPv4"]),  # skips every private range and still opens everything
        (["1.2.3.4/0"], ["IPv4"]),  # host bits do not hide a /0
        (["::/0"], ["IPv6"]),
        (["::/1", "8000::/1"], ["IPv6"]),
        (["2000::/3"], ["IPv6"]),  # all of global unicast
        (["2000::/4", "3000::/4"], ["IPv6"]),
        (["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"], ["IPv4", "IPv6"]),
        # Not the internet: one public piece is missing.
        ([c for c in SLASH_8S if c != "8.0.0.0/8"], []),
        (_public_ipv4_pieces()[1:], []),
        (["0.0.0.0/1"], []),
        (["2000::/4"], []),
        (["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"], []),
        ([], []),
    ],
)
def test_union_covering_every_public_address(cidrs: list[str], families: list[str]) -> None:
    assert public_families_covered(cidrs) == families


def test_a_public_ipv4_host_left_out_is_not_the_whole_internet() -> None:
    everything_but_one = ipaddress.IPv4Network("0.0.0.0/0").address_exclude(
        ipaddress.IPv4Network("8.8.8.8/32")
    )
    assert public_families_covered(str(n) for n in everything_but_one) == []


STATIC = """
config:
  strata:cluster:
    provider: static
    instance_type: cpu
    node_count: 1
    inventory: playbooks/inventories/local.yml
    network: {{allowed_ingress_cidrs: {cidrs}}}
"""


@pytest.mark.parametrize(
    "cidrs", [["0.0.0.0/0"], ["0.0.0.0/1", "128.0.0.0/1"], SLASH_8S, ["::/1", "8000::/1"], ["2000::/3"]]
)
def test_the_cluster_declaration_refuses_the_internet_in_pieces(write_yaml, cidrs: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write_yaml(STATIC.format(cidrs=cidrs)))
    message = str(info.value)
    assert "key `config.strata:cluster.network.allowed_ingress_cidrs`" in message
    assert "opens the cluster to the whole internet" in message


def test_the_cluster_declaration_takes_a_large_but_partial_range(write_yaml) -> None:
    cidrs = [c for c in SLASH_8S if c != "8.0.0.0/8"]
    assert load_spec(write_yaml(STATIC.format(cidrs=cidrs))).network.allowed_ingress_cidrs == cidrs
