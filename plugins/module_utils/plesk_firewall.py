# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plesk's firewall extension driven from the host firewall's openings.

The openings are the firewall role's (``{"name", "ports", "proto", "sources"}``, checked
and normalised by ``firewall.py``). On a Plesk server they become rules of Plesk's own
firewall extension, one per opening, named ``hostops <name>``, so that hostops only ever
edits its own rules and Plesk's predefined ones.

:func:`firewall_commands` compares the rules ``plesk ext firewall --list-json`` printed
with the openings wanted, and gives the ``plesk ext firewall`` argument lists that bring
Plesk's pending configuration there: create (``--set-rule -name``) or update
(``--set-rule -id``) hostops' rules, turn every other incoming rule that allows (Plesk's
predefined service rules, the system policy for incoming traffic) to ``deny``, and remove
hostops' rules no longer wanted (``--remove-rules -ids``). An empty list means Plesk
already holds exactly these rules. Putting them in force (``--apply``, then ``--confirm``
from a new connection) is the role's business.

The shape of ``--list-json`` read here (``id``, ``name``, ``direction``, ``action``,
``ports`` and ``from``, the last two as comma-separated strings or lists) is taken from
third-party scripts that drive the extension, not from a real Plesk: see docs/plesk.md.

Only the Python standard library is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .firewall import normalise_openings

RULE_PREFIX = "hostops "


def _items(value: object) -> list[str]:
    """A rule's ports or addresses, whether Plesk lists them as a string or a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Sequence):
        return [str(part).strip() for part in value if str(part).strip()]
    return [str(value)]


def wanted_rules(openings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Plesk rules for *openings*: ``{name, ports, from}``, ports as ``80/tcp`` and
    ranges as ``40000-40100/tcp``, ``from`` empty for anywhere."""
    rules = []
    for rule in normalise_openings(openings):
        rules.append(
            {
                "name": RULE_PREFIX + rule["name"],
                "ports": [f"{port}/{rule['proto']}" for port in rule["ports"]],
                "from": [] if rule["anywhere"] else rule["sources4"] + rule["sources6"],
            }
        )
    return rules


def _set_rule(target: list[str], rule: Mapping[str, Any]) -> list[str]:
    return [
        "--set-rule", *target, "-direction", "input", "-action", "allow",
        "-ports", ",".join(rule["ports"]), "-remote-addresses", ",".join(rule["from"]),
    ]


def firewall_commands(
    current: Sequence[Mapping[str, Any]], openings: Sequence[Mapping[str, Any]]
) -> list[list[str]]:
    """The ``plesk ext firewall`` argument lists that turn *current* (``--list-json``)
    into hostops' rules for *openings* and deny everything else coming in."""
    wanted = wanted_rules(openings)
    names = {rule["name"] for rule in wanted}
    by_name: dict[str, Mapping[str, Any]] = {}
    commands: list[list[str]] = []
    stale: list[str] = []
    for rule in current:
        name = str(rule.get("name", ""))
        if name.startswith(RULE_PREFIX):
            if name in names and name not in by_name:
                by_name[name] = rule
            else:
                stale.append(str(rule.get("id")))
    for rule in wanted:
        found = by_name.get(rule["name"])
        if found is None:
            commands.append(_set_rule(["-name", rule["name"]], rule))
        elif (
            str(found.get("direction")) != "input"
            or str(found.get("action")) != "allow"
            or sorted(_items(found.get("ports"))) != sorted(rule["ports"])
            or sorted(_items(found.get("from"))) != sorted(rule["from"])
        ):
            commands.append(_set_rule(["-id", str(found.get("id"))], rule))
    for rule in current:
        if (
            not str(rule.get("name", "")).startswith(RULE_PREFIX)
            and str(rule.get("direction")) == "input"
            and str(rule.get("action")) == "allow"
        ):
            commands.append(["--set-rule", "-id", str(rule.get("id")), "-action", "deny"])
    if stale:
        commands.append(["--remove-rules", "-ids", ",".join(stale)])
    return commands
