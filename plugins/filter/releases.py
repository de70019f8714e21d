# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``'web' | alteo.hostops.supported_releases``: the Debian major versions a role
supports, from ``plugins/module_utils/releases.py`` (the one table the CLI reads too)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.releases import ROLE_RELEASES

DOCUMENTATION = r"""
name: supported_releases
short_description: The Debian releases a role of alteo.hostops supports
description:
  - Returns the Debian major versions (as strings, for example C(["12", "13"])) the
    named role is tested on; the roles' preflights refuse other releases, and
    C(hostops order validate) refuses an order that needs a role on another release.
options:
  _input:
    description: The role's short name, for example C(web).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Assert the host runs a supported Debian release
  ansible.builtin.assert:
    that: ansible_facts.distribution_major_version in ('web' | alteo.hostops.supported_releases)
"""

RETURN = r"""
_value:
  description: The Debian major versions, as strings.
  type: list
  elements: str
"""


def supported_releases(role: Any) -> list[str]:
    name = str(role)
    if name not in ROLE_RELEASES:
        raise AnsibleFilterError(
            f"alteo.hostops.supported_releases: {name!r} is not a role of alteo.hostops "
            f"({', '.join(sorted(ROLE_RELEASES))})"
        )
    return list(ROLE_RELEASES[name])


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"supported_releases": supported_releases}
