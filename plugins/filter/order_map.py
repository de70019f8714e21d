# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the order-to-roles map, thin shims over ``plugins/module_utils/order_map.py``.

* ``hostops_managed_level | alteo.hostops.order_roles(hostops_stack, by_hand)``: the roles
  the order asks for (``playbooks/vars/order.yml``; every playbook gates on it).
* ``'backups.time' | alteo.hostops.contract_default``: the contract's default of an order
  field, for the roles' defaults and the map.
* ``{'backup_time': ..., 'backup_paths': ...} | alteo.hostops.backup_problems``: what is
  wrong with the backup role's inputs, by the order's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.order_map import (
    STACK_ROLES,
    backup_problems,
    contract_default,
    order_backups,
    order_roles,
)
from ansible_collections.alteo.hostops.plugins.module_utils.order_rules import plain_data

DOCUMENTATION = r"""
name: order_roles
short_description: Which roles an order asks for, the contract's defaults, the backup rules
description:
  - C(order_roles) gives the roles an order's managed level and stack ask for (level
    custom, its stack's roles; level plesk, C(plesk); other levels none); without a level
    (a playbook run by hand), the playbook's own part (the optional argument).
  - C(contract_default) gives the contract's default of an order field named with dots
    (C(backups.time), C(backups.retention_days), C(backups.enabled), C(backups.paths),
    C(stack.mail_profile), C(os)).
  - C(order_backups) gives an order's C(backups) section with the contract's defaults
    filled in (7 days kept for shared hosting, 28 otherwise); its argument is the service.
  - C(backup_problems) lists what is wrong with the backup role's inputs (a dict of them),
    by the rules of an order's C(backups) section.
options:
  _input:
    description: The managed level, a field name, or a dict of backup inputs.
    type: raw
    required: true
"""

RETURN = r"""
_value:
  description: A list of role names, a default value, or a list of problems.
  type: raw
"""


def order_roles_filter(level: Any, stack: Any = None, by_hand: Any = STACK_ROLES) -> list[str]:
    if isinstance(by_hand, str) or not isinstance(by_hand, list | tuple):
        raise AnsibleFilterError(
            f"alteo.hostops.order_roles: by_hand must be a list of roles, got {by_hand!r}"
        )
    return order_roles(plain_data(level), plain_data(stack), [str(role) for role in by_hand])


def contract_default_filter(name: Any) -> Any:
    try:
        return contract_default(str(name))
    except ValueError as err:
        raise AnsibleFilterError(f"alteo.hostops.contract_default: {err}") from err


def order_backups_filter(section: Any, service: Any = None) -> dict[str, Any]:
    return order_backups(plain_data(section), plain_data(service))


def backup_problems_filter(inputs: Any) -> list[str]:
    if not isinstance(inputs, Mapping):
        raise AnsibleFilterError(
            f"alteo.hostops.backup_problems: expected a dict of inputs, got {inputs!r}"
        )
    return backup_problems(plain_data(inputs))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "order_roles": order_roles_filter,
            "contract_default": contract_default_filter,
            "backup_problems": backup_problems_filter,
            "order_backups": order_backups_filter,
        }
