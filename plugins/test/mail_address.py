# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``x is alteo.hostops.mail_address``: the one mailbox-address rule of hostops
(``plugins/module_utils/names.py``), shared by ``hostops request mailbox`` and the mail
role's preflight."""

from __future__ import annotations

from typing import Any

from ansible_collections.alteo.hostops.plugins.module_utils.names import mail_address_problem

DOCUMENTATION = r"""
name: mail_address
short_description: Is the value a mailbox address hostops accepts
description:
  - True for C(LOCAL@DOMAIN) in lowercase, LOCAL of letters, digits, C(.), C(_) and C(-)
    (64 at most, no leading, trailing or doubled C(.), not postmaster, abuse, root or
    mailer-daemon), DOMAIN a domain name (see C(alteo.hostops.domain_name)).
options:
  _input:
    description: The value.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Assert the address is a mailbox address
  ansible.builtin.assert:
    that: mail_mailbox_address is alteo.hostops.mail_address
"""

RETURN = r"""
_value:
  description: Whether the value is a mailbox address hostops accepts.
  type: bool
"""


def mail_address(value: Any) -> bool:
    return isinstance(value, str) and mail_address_problem(str(value)) is None


class TestModule:
    def tests(self) -> dict[str, Any]:
        return {"mail_address": mail_address}
