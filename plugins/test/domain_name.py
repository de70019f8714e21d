# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``x is alteo.hostops.domain_name``: the one domain-name rule of hostops
(``plugins/module_utils/names.py``), shared by the CLI and the roles' preflights."""

from __future__ import annotations

from typing import Any

from ansible_collections.alteo.hostops.plugins.module_utils.names import is_domain_name

DOCUMENTATION = r"""
name: domain_name
short_description: Is the value a lowercase domain name hostops accepts
description:
  - True for a lowercase domain or host name (RFC 1123) of two labels at least, labels of
    a-z, 0-9 and C(-), the last one starting with a letter, 4 to 253 characters; the rule
    C(hostops order validate) and C(hostops request) apply to the same fields.
options:
  _input:
    description: The value.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Assert the vhost's domain is a domain name
  ansible.builtin.assert:
    that: web_vhost_domain is alteo.hostops.domain_name
"""

RETURN = r"""
_value:
  description: Whether the value is a domain name hostops accepts.
  type: bool
"""


def domain_name(value: Any) -> bool:
    return isinstance(value, str) and is_domain_name(str(value))


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"domain_name": domain_name}
