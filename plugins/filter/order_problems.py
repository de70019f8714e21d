# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``alteo.hostops.order_problems``: what is wrong with an order given as extra variables.

The rules are ``plugins/module_utils/order_rules.py``, the same that ``hostops order
validate`` applies to an order file; ``playbooks/provision.yml`` uses this filter in its
first play, on the controller, so that an AWX job with a bad order fails before any task
reaches a host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.order_rules import vars_problems

DOCUMENTATION = r"""
name: order_problems
short_description: What is wrong with an order given as provision.yml's extra variables
description:
  - Checks the order variables (C(hostops_order), C(hostops_customer), C(hostops_service),
    C(hostops_os), C(hostops_managed_level), C(hostops_servers), C(hostops_stack),
    C(hostops_backups) and the others that C(hostops order vars) prints) against the rules
    of C(hostops order validate), and returns one line per problem, naming the variable.
  - Names that are not order variables are ignored; an absent or null variable counts as
    a field the order leaves out.
options:
  _input:
    description: The variables, by name.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse a bad order before any host is touched
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems }}"
  vars:
    __names: "{{ q('ansible.builtin.varnames', '^hostops_') }}"
    __problems: >-
      {{ dict(__names | zip(q('ansible.builtin.vars', *__names)))
         | alteo.hostops.order_problems }}
"""

RETURN = r"""
_value:
  description: One line per problem (C(VARIABLE.FIELD - MESSAGE)); empty when the order is valid.
  type: list
  elements: str
"""


def order_problems(values: Any) -> list[str]:
    if not isinstance(values, Mapping):
        raise AnsibleFilterError(
            "alteo.hostops.order_problems: expected a mapping of variables, "
            f"got {type(values).__name__}"
        )
    return vars_problems(values)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"order_problems": order_problems}
