# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the firewall role, thin shims over ``plugins/module_utils/firewall.py``.

* ``openings | alteo.hostops.firewall_problems([label])``: what is wrong, one line each
  ([] if fine), naming ``label[i]`` (default ``firewall_openings``).
* ``openings | alteo.hostops.firewall_rules``: the normalised rules the template writes.
* ``openings | alteo.hostops.firewall_admits(address, port)``: whether a TCP connection
  from *address* to *port* is let in.
* ``listed | alteo.hostops.plesk_firewall_commands(openings)``: the ``plesk ext firewall``
  argument lists that bring Plesk's firewall (its ``--list-json``) to the openings
  (``plugins/module_utils/plesk_firewall.py``).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.firewall import (
    admits,
    normalise_openings,
    opening_problems,
)
from ansible_collections.alteo.hostops.plugins.module_utils.order_rules import plain_data
from ansible_collections.alteo.hostops.plugins.module_utils.plesk_firewall import (
    firewall_commands,
)

DOCUMENTATION = r"""
name: firewall_rules
short_description: The firewall role's openings, checked and normalised
description:
  - C(firewall_problems) lists what is wrong with a list of openings.
  - C(firewall_rules) merges each opening's ports into disjoint ranges and splits its
    sources by address family, for the nftables template.
  - C(firewall_admits) tells whether the openings let a TCP connection in from an address
    to a port.
  - C(plesk_firewall_commands) gives the C(plesk ext firewall) argument lists that turn the
    rules Plesk lists (those of C(--list-json)) into the openings.
options:
  _input:
    description: The openings, as the role's C(firewall_openings).
    type: list
    elements: dict
    required: true
"""

RETURN = r"""
_value:
  description: A list of problems, a list of rules, or a boolean.
  type: raw
"""


def firewall_problems(openings: Any, label: str = "firewall_openings") -> list[str]:
    return opening_problems(plain_data(openings), str(label))


def firewall_rules(openings: Any) -> list[dict[str, Any]]:
    try:
        return normalise_openings(plain_data(openings))
    except ValueError as err:
        raise AnsibleFilterError(f"alteo.hostops.firewall_rules: {err}") from err


def firewall_admits(openings: Any, address: str, port: Any, proto: str = "tcp") -> bool:
    try:
        return admits(plain_data(openings), str(address), plain_data(port), str(proto))
    except ValueError as err:
        raise AnsibleFilterError(f"alteo.hostops.firewall_admits: {err}") from err


def plesk_firewall_commands(listed: Any, openings: Any) -> list[list[str]]:
    try:
        return firewall_commands(plain_data(listed), plain_data(openings))
    except ValueError as err:
        raise AnsibleFilterError(f"alteo.hostops.plesk_firewall_commands: {err}") from err


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "firewall_problems": firewall_problems,
            "firewall_rules": firewall_rules,
            "firewall_admits": firewall_admits,
            "plesk_firewall_commands": plesk_firewall_commands,
        }
