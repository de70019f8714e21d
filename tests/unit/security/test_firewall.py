"""The firewall's openings (plugins/module_utils/firewall.py): problems, normalisation,
and the lockout guard's question "is this connection let in?"."""

from __future__ import annotations

from typing import Any

import pytest

from hostops.module_utils.firewall import admits, normalise_openings, opening_problems

WEB = {"name": "web", "ports": [80, 443], "proto": "tcp", "sources": []}


@pytest.mark.parametrize(
    ("openings", "problem"),
    [
        ({"name": "web"}, "firewall_openings: expected a list of openings, got dict"),
        (["web"], "firewall_openings[0]: expected a mapping"),
        ([{**WEB, "name": "Web"}], "firewall_openings[0]: name 'Web' must be 1 to 32"),
        ([{**WEB, "name": "a" * 33}], "firewall_openings[0]: name 'aaaa"),
        ([{**WEB, "name": "x y"}], "firewall_openings[0]: name 'x y'"),
        ([WEB, WEB], "firewall_openings[1] (web): the name is also that of firewall_openings[0]"),
        ([{**WEB, "port": 80}], "firewall_openings[0] (web): unknown field(s) port"),
        ([{**WEB, "proto": "icmp"}], "firewall_openings[0] (web): proto 'icmp' is not one of"),
        ([{**WEB, "ports": []}], "firewall_openings[0] (web): ports must be a non-empty list"),
        ([{**WEB, "ports": 80}], "firewall_openings[0] (web): ports must be a non-empty list"),
        ([{**WEB, "ports": [0]}], "firewall_openings[0] (web): port 0 is not a port"),
        ([{**WEB, "ports": [65536]}], "firewall_openings[0] (web): port 65536 is not a port"),
        ([{**WEB, "ports": [True]}], "firewall_openings[0] (web): port True is not a port"),
        ([{**WEB, "ports": ["80-"]}], "firewall_openings[0] (web): port '80-' is not a port"),
        ([{**WEB, "ports": ["90-80"]}], "firewall_openings[0] (web): port '90-80' is not a port"),
        ([{**WEB, "ports": ["1-70000"]}], "firewall_openings[0] (web): port '1-70000' is not"),
        ([{**WEB, "ports": ["80; drop"]}], "firewall_openings[0] (web): port '80; drop'"),
        ([{**WEB, "sources": "10.0.0.1"}], "firewall_openings[0] (web): sources must be a list"),
        ([{**WEB, "sources": ["10.0.0.256"]}], "firewall_openings[0] (web): source '10.0.0.256'"),
        ([{**WEB, "sources": ["fe80::1%eth0"]}], "firewall_openings[0] (web): source 'fe80::1%"),
        ([{**WEB, "sources": [""]}], "firewall_openings[0] (web): source ''"),
        ([{**WEB, "sources": ["} accept"]}], "firewall_openings[0] (web): source '} accept'"),
        ([{**WEB, "sources": ["example.org"]}], "firewall_openings[0] (web): source 'example"),
    ],
)
def test_problems_name_the_opening_and_the_value(openings: Any, problem: str) -> None:
    problems = opening_problems(openings)
    assert any(line.startswith(problem) for line in problems), problems
    with pytest.raises(ValueError, match="firewall_openings"):
        normalise_openings(openings if isinstance(openings, list) else [openings])


@pytest.mark.parametrize(
    "openings",
    [
        [],
        [WEB],
        [{"name": "ftp", "ports": [21, "40000-40100"]}],  # proto and sources have defaults
        [{"name": "dns", "ports": ["53"], "proto": "udp", "sources": ["2001:db8::/32"]}],
        [{"name": "one-port-range", "ports": ["22-22"], "sources": ["192.0.2.7"]}],
    ],
)
def test_good_openings(openings: list[dict[str, Any]]) -> None:
    assert opening_problems(openings) == []


def test_normalisation_merges_ports_and_splits_sources_by_family() -> None:
    (rule,) = normalise_openings(
        [
            {
                "name": "mixed",
                "ports": [443, "40000-40100", 80, 40050, "40101-40110", 81, "8000-8080"],
                "sources": ["192.0.2.0/25", "192.0.2.128/25", "2001:DB8::1", "10.1.2.3/8"],
            }
        ]
    )
    assert rule == {
        "name": "mixed",
        "proto": "tcp",
        "ports": ["80-81", "443", "8000-8080", "40000-40110"],
        "anywhere": False,
        "sources4": ["10.0.0.0/8", "192.0.2.0/24"],
        "sources6": ["2001:db8::1"],
    }


def test_normalisation_keeps_the_order_of_the_openings() -> None:
    rules = normalise_openings([WEB, {"name": "ssh", "ports": [22]}])
    assert [rule["name"] for rule in rules] == ["web", "ssh"]
    assert rules[1] == {
        "name": "ssh",
        "proto": "tcp",
        "ports": ["22"],
        "anywhere": True,
        "sources4": [],
        "sources6": [],
    }


def test_an_ipv4_mapped_source_is_an_ipv4_source() -> None:
    (rule,) = normalise_openings([{"name": "x", "ports": [1], "sources": ["::ffff:192.0.2.1"]}])
    assert (rule["sources4"], rule["sources6"]) == (["192.0.2.1"], [])


OPS: list[dict[str, Any]] = [
    {"name": "ssh", "ports": [22], "sources": ["192.0.2.0/24", "2001:db8::/32"]},
    {"name": "web", "ports": [80, 443]},
    {"name": "passive", "ports": ["40000-40100"]},
    {"name": "dns", "ports": [53], "proto": "udp"},
]


@pytest.mark.parametrize(
    ("address", "port", "proto", "expected"),
    [
        ("192.0.2.10", 22, "tcp", True),
        ("192.0.2.10", "22", "tcp", True),
        ("2001:db8::5", 22, "tcp", True),
        ("::ffff:192.0.2.10", 22, "tcp", True),  # as sshd may report an IPv4 client
        ("198.51.100.1", 22, "tcp", False),  # not an admin source
        ("2001:db9::5", 22, "tcp", False),
        ("198.51.100.1", 443, "tcp", True),  # open to anywhere
        ("198.51.100.1", 40000, "tcp", True),
        ("198.51.100.1", 40100, "tcp", True),
        ("198.51.100.1", 40101, "tcp", False),
        ("198.51.100.1", 2222, "tcp", False),  # sshd moved to a port that is not open
        ("198.51.100.1", 53, "udp", True),
        ("198.51.100.1", 53, "tcp", False),
        ("198.51.100.1", 80, "udp", False),
    ],
)
def test_admits(address: str, port: int | str, proto: str, expected: bool) -> None:
    assert admits(OPS, address, port, proto) is expected


@pytest.mark.parametrize(
    ("address", "port"),
    [("", 22), ("192.0.2.0/24", 22), ("x", 22), ("192.0.2.1", 0), ("192.0.2.1", "a")],
)
def test_admits_wants_one_address_and_one_port(address: str, port: Any) -> None:
    with pytest.raises(ValueError, match="not an address and a port"):
        admits(OPS, address, port)
