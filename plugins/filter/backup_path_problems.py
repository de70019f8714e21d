# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``alteo.hostops.backup_path_problems``: the paths a file backup cannot hold, with why.

One rule (``plugins/module_utils/order_rules.py``) for an order's ``backups.paths``
(``hostops order validate``) and the backup role's ``backup_paths`` (its preflight).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.order_rules import (
    backup_path_problem,
)

DOCUMENTATION = r"""
name: backup_path_problems
short_description: The backup paths that cannot be backed up, each with the reason
description:
  - For each path that is not absolute, contains C(..), is C(/) itself, or lies under a
    virtual or runtime filesystem (C(/proc), C(/sys), C(/dev), C(/run)), one line
    C(PATH - REASON). Empty when every path can be backed up.
options:
  _input:
    description: The paths.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Assert the paths can be backed up
  ansible.builtin.assert:
    that: backup_paths | alteo.hostops.backup_path_problems | length == 0
"""

RETURN = r"""
_value:
  description: One line per path that cannot be backed up.
  type: list
  elements: str
"""


def backup_path_problems(paths: Any) -> list[str]:
    if isinstance(paths, str) or not isinstance(paths, list | tuple):
        raise AnsibleFilterError(
            f"alteo.hostops.backup_path_problems: expected a list of paths, got {paths!r}"
        )
    problems = []
    for path in paths:
        why = backup_path_problem(str(path))
        if why is not None:
            problems.append(f"{str(path)!r} {why}")
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"backup_path_problems": backup_path_problems}
