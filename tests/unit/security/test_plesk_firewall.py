"""Plesk's firewall extension from the host firewall's openings
(plugins/module_utils/plesk_firewall.py): which ``plesk ext firewall`` commands bring the
rules Plesk lists to hostops' openings, and none when they are there already."""

from __future__ import annotations

from typing import Any

import pytest

from hostops.module_utils.plesk_firewall import firewall_commands, wanted_rules

PANEL = {"name": "panel", "ports": [8443], "proto": "tcp", "sources": []}
FTP = {"name": "ftp", "ports": [21, "49152-65535"], "proto": "tcp", "sources": []}
NODE = {"name": "node-exporter", "ports": [9100], "proto": "tcp",
        "sources": ["192.0.2.5", "2001:db8::5", "192.0.2.4"]}
# What Plesk lists before hostops: its predefined rules and the system policies
PLESK_DEFAULTS: list[dict[str, Any]] = [
    {"id": 1, "name": "Plesk administrative interface", "direction": "input",
     "action": "allow", "ports": "8443/tcp,8880/tcp", "from": ""},
    {"id": 2, "name": "MySQL server", "direction": "input", "action": "allow",
     "ports": "3306/tcp", "from": ""},
    {"id": 3, "name": "System policy for incoming traffic", "direction": "input",
     "action": "allow", "ports": "", "from": ""},
    {"id": 4, "name": "System policy for outgoing traffic", "direction": "output",
     "action": "allow", "ports": "", "from": ""},
]


def listed(openings: list[dict[str, Any]], first_id: int = 10) -> list[dict[str, Any]]:
    """What Plesk lists once hostops' rules are in and its own set to deny."""
    ours = [{"id": first_id + i, "direction": "input", "action": "allow",
             "name": r["name"], "ports": ",".join(r["ports"]), "from": ",".join(r["from"])}
            for i, r in enumerate(wanted_rules(openings))]
    theirs = [{**r, "action": "deny" if r["direction"] == "input" else r["action"]}
              for r in PLESK_DEFAULTS]
    return ours + theirs


def test_rules_are_named_for_hostops_with_plesk_port_spelling() -> None:
    assert wanted_rules([FTP, NODE]) == [
        {"name": "hostops ftp", "ports": ["21/tcp", "49152-65535/tcp"], "from": []},
        {"name": "hostops node-exporter", "ports": ["9100/tcp"],
         "from": ["192.0.2.4/31", "2001:db8::5"]},  # collapsed,
    ]


def test_a_fresh_plesk_gets_hostops_rules_and_everything_else_denied() -> None:
    assert firewall_commands(PLESK_DEFAULTS, [PANEL, NODE]) == [
        ["--set-rule", "-name", "hostops panel", "-direction", "input", "-action", "allow",
         "-ports", "8443/tcp", "-remote-addresses", ""],
        ["--set-rule", "-name", "hostops node-exporter", "-direction", "input",
         "-action", "allow", "-ports", "9100/tcp",
         "-remote-addresses", "192.0.2.4/31,2001:db8::5"],
        ["--set-rule", "-id", "1", "-action", "deny"],
        ["--set-rule", "-id", "2", "-action", "deny"],
        ["--set-rule", "-id", "3", "-action", "deny"],
    ]


@pytest.mark.parametrize("as_lists", [False, True])
def test_nothing_to_do_when_plesk_holds_exactly_the_rules(as_lists: bool) -> None:
    rules = listed([PANEL, FTP, NODE])
    if as_lists:  # Plesk may list ports and addresses as JSON arrays
        rules = [{**r, "ports": r["ports"].split(",") if r["ports"] else [],
                  "from": r["from"].split(",") if r["from"] else []} for r in rules]
    assert firewall_commands(rules, [PANEL, FTP, NODE]) == []


def test_a_changed_opening_updates_its_rule_by_id() -> None:
    moved = {**NODE, "sources": ["192.0.2.9"]}
    assert firewall_commands(listed([PANEL, NODE]), [PANEL, moved]) == [
        ["--set-rule", "-id", "11", "-direction", "input", "-action", "allow",
         "-ports", "9100/tcp", "-remote-addresses", "192.0.2.9"],
    ]


def test_a_rule_turned_to_deny_by_hand_is_allowed_again() -> None:
    rules = listed([PANEL])
    rules[0]["action"] = "deny"
    assert firewall_commands(rules, [PANEL]) == [
        ["--set-rule", "-id", "10", "-direction", "input", "-action", "allow",
         "-ports", "8443/tcp", "-remote-addresses", ""],
    ]


def test_an_opening_no_longer_wanted_is_removed_and_duplicates_too() -> None:
    duplicate = {"id": 30, "name": "hostops panel", "direction": "input", "action": "allow",
                 "ports": "8443/tcp", "from": ""}
    rules = [*listed([PANEL, FTP]), duplicate]
    assert firewall_commands(rules, [PANEL]) == [["--remove-rules", "-ids", "11,30"]]


def test_a_client_rule_that_allows_is_denied_and_outgoing_rules_are_left() -> None:
    rules = [
        *listed([PANEL]),
        {"id": 40, "name": "client's own", "direction": "input", "action": "allow",
         "ports": "3000/tcp", "from": ""},
        {"id": 41, "name": "outbound", "direction": "output", "action": "allow",
         "ports": "25/tcp", "from": ""},
    ]
    assert firewall_commands(rules, [PANEL]) == [["--set-rule", "-id", "40", "-action", "deny"]]


def test_bad_openings_are_refused() -> None:
    with pytest.raises(ValueError, match="port 70000 is not a port"):
        firewall_commands([], [{**PANEL, "ports": [70000]}])
