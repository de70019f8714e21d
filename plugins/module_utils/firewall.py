# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host firewall's openings: checked, normalised, and asked "is this let in?".

An *opening* is what a role lets in, as the firewall role's input
``firewall_openings`` lists it::

    {"name": "web", "ports": [80, 443], "proto": "tcp", "sources": []}

``ports`` holds port numbers (1..65535) and ranges ``"LOW-HIGH"``; ``sources`` holds
IPv4 and IPv6 addresses and networks (CIDR), an empty list meaning anywhere.

* :func:`opening_problems` lists what is wrong with a list of openings, one line each,
  naming the opening and the value (the role's preflight refuses a non-empty list).
* :func:`normalise_openings` gives the rules the template writes: ports merged into
  sorted, disjoint ranges, sources split by family and collapsed, so that nftables
  never sees an overlap in an anonymous set.
* :func:`admits` says whether the openings let a TCP/UDP connection from an address in
  on a port: the role's guard against cutting off the connection it runs over.

Only the Python standard library is used.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

PROTOCOLS = ("tcp", "udp")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_RANGE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})$")
_FIELDS = ("name", "ports", "proto", "sources")

# A runtime alias, so Union: module_utils may be imported by Pythons older than 3.10.
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def _port_range(value: object) -> tuple[int, int] | None:
    """A port or a "LOW-HIGH" range as (low, high), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        low = high = value
    elif isinstance(value, str) and value.strip().isdigit():
        low = high = int(value.strip())
    elif isinstance(value, str) and (match := _RANGE.match(value.strip())):
        low, high = int(match.group(1)), int(match.group(2))
    else:
        return None
    if not 1 <= low <= high <= 65535:
        return None
    return low, high


def _network(value: object) -> Network | None:
    if not isinstance(value, str) or not value.strip() or "%" in value:
        return None
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped:
        mapped = network.network_address.ipv4_mapped
        return ipaddress.ip_network(f"{mapped}/{max(network.prefixlen - 96, 0)}", strict=False)
    return network


def opening_problems(openings: object, label: str = "firewall_openings") -> list[str]:
    """What is wrong with *openings*, one ``LABEL[i] (name): problem`` line each."""
    if not isinstance(openings, list):
        return [f"{label}: expected a list of openings, got {type(openings).__name__}"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, opening in enumerate(openings):
        where = f"{label}[{index}]"
        if not isinstance(opening, Mapping):
            problems.append(f"{where}: expected a mapping (name, ports, proto, sources)")
            continue
        name = opening.get("name")
        if isinstance(name, str) and _NAME.match(name):
            where = f"{where} ({name})"
            if name in seen:
                first = f"{label}[{seen[name]}]"
                problems.append(f"{where}: the name is also that of {first}")
            seen.setdefault(name, index)
        else:
            problems.append(
                f"{where}: name {name!r} must be 1 to 32 of a-z 0-9 _ -, starting with a letter"
            )
        unknown = sorted(str(key) for key in opening if key not in _FIELDS)
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
        if opening.get("proto", "tcp") not in PROTOCOLS:
            problems.append(f"{where}: proto {opening.get('proto')!r} is not one of tcp, udp")
        ports = opening.get("ports")
        if not isinstance(ports, list) or not ports:
            problems.append(f"{where}: ports must be a non-empty list")
        else:
            problems += [
                f"{where}: port {port!r} is not a port 1..65535 or a range LOW-HIGH"
                for port in ports
                if _port_range(port) is None
            ]
        sources = opening.get("sources", [])
        if not isinstance(sources, list):
            problems.append(f"{where}: sources must be a list (empty: anywhere)")
        else:
            problems += [
                f"{where}: source {source!r} is not an IPv4 or IPv6 address or network"
                for source in sources
                if _network(source) is None
            ]
    return problems


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _spelt(network: Network) -> str:
    """A network as nftables lists it: a single address without its prefix length."""
    return str(network.network_address) if network.num_addresses == 1 else str(network)


def normalise_openings(openings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rules to write, in the order given: ``{name, proto, ports, anywhere,
    sources4, sources6}`` with ports as nftables spells them ("80", "40000-40100")."""
    problems = opening_problems(list(openings))
    if problems:
        raise ValueError("; ".join(problems))
    rules = []
    for opening in openings:
        ranges = _merge(r for r in map(_port_range, opening["ports"]) if r is not None)
        networks = [n for n in map(_network, opening.get("sources", [])) if n is not None]
        v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
        rules.append(
            {
                "name": opening["name"],
                "proto": opening.get("proto", "tcp"),
                "ports": [str(low) if low == high else f"{low}-{high}" for low, high in ranges],
                "anywhere": not networks,
                "sources4": [_spelt(n) for n in ipaddress.collapse_addresses(v4)],
                "sources6": [_spelt(n) for n in ipaddress.collapse_addresses(v6)],
            }
        )
    return rules


def admits(
    openings: Sequence[Mapping[str, Any]], address: str, port: int | str, proto: str = "tcp"
) -> bool:
    """Whether *openings* let a *proto* connection from *address* in on *port*."""
    client = _network(address)
    wanted = _port_range(port)
    if client is None or wanted is None or client.num_addresses != 1:
        raise ValueError(f"not an address and a port: {address!r}, {port!r}")
    for rule in normalise_openings(openings):
        if rule["proto"] != proto:
            continue
        ranges = [_port_range(p) or (0, 0) for p in rule["ports"]]
        if not any(low <= wanted[0] <= high for low, high in ranges):
            continue
        sources = [ipaddress.ip_network(s) for s in rule["sources4"] + rule["sources6"]]
        if rule["anywhere"] or any(
            client.version == s.version and client.subnet_of(s)  # type: ignore[arg-type]
            for s in sources
        ):
            return True
    return False
