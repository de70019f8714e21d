#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: services
short_description: Keep systemd units enabled and running, asking systemd first
version_added: 0.1.0
description:
  - The units of O(name) in the state O(enabled) and O(state) say, as
    M(ansible.builtin.systemd_service) keeps one unit, but asking systemd about all of them
    first in one C(systemctl show) (a few milliseconds). A unit found exactly in the state
    asked (loaded; C(UnitFileState) V(enabled) or V(disabled) as O(enabled) asks;
    C(ActiveState) V(active) for V(started), V(inactive) for V(stopped)) is left alone and
    reported unchanged. Every other unit goes to M(ansible.builtin.systemd_service) with
    the same options, in the order given, which then decides (a static, generated or
    masked unit, one starting or failed, one not found).
  - M(ansible.builtin.systemd_service) asks systemd two or three times for each unit even
    when nothing is to be done (about 35 ms a unit); a role keeps its daemons running on
    every run.
  - With O(daemon_reload), every unit goes to M(ansible.builtin.systemd_service), the first
    one with O(daemon_reload) (systemd reads the units again before anything is asked).
  - The work is done by the action plugin of the same name; this module is the query it
    runs on the host.
options:
  name:
    description: The units (a name without a suffix is a C(.service)), in the order to act.
    type: list
    elements: str
    required: true
  enabled:
    description: Whether the units start at boot; not changed when not given.
    type: bool
  state:
    description:
      - V(started) or V(stopped); not changed when not given. Restarts and reloads are a
        handler's, with M(ansible.builtin.systemd_service).
    type: str
    choices: [started, stopped]
  daemon_reload:
    description:
      - Make systemd read the units again first (every unit then goes to
        M(ansible.builtin.systemd_service)).
    type: bool
    default: false
attributes:
  check_mode:
    description:
      - systemd is asked as in a real run; M(ansible.builtin.systemd_service) predicts the
        rest.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - Runs as root on a host booted with systemd.
  - One of O(enabled), O(state) and O(daemon_reload) is required.
  - A unit M(ansible.builtin.systemd_service) fails on does not stop the others; the task
    fails, and its message names each unit that failed.
seealso:
  - module: ansible.builtin.systemd_service
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Keep Apache, PHP-FPM and nginx enabled and running
  alteo.hostops.services:
    name: [apache2, php8.4-fpm, nginx]
    enabled: true
    state: started

- name: Stop and disable a timer
  alteo.hostops.services:
    name: [hostops-backup-files.timer]
    enabled: false
    state: stopped
"""

RETURN = r"""
units:
  description:
    - Each unit of O(name), in order, with what systemd said of it (C(load_state),
      C(active_state), C(unit_file_state)) before the task, whether it was left alone
      (C(settled)) and whether M(ansible.builtin.systemd_service) changed it (C(changed)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: nginx
      load_state: loaded
      active_state: active
      unit_file_state: enabled
      settled: true
      changed: false
"""

import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# systemd.unit(5): a unit name, an instance's included (what the roles name)
UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.@-]*")
PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState")


def parse_show(output: str, count: int) -> list[dict[str, str]]:
    """'systemctl show' of several units: one block of KEY=VALUE lines per unit, in the
    order asked, separated by an empty line. ValueError for a count that does not match."""
    blocks: list[dict[str, str]] = []
    for text in output.strip("\n").split("\n\n"):
        block: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                block[key] = value
        blocks.append(block)
    if len(blocks) != count:
        raise ValueError(f"systemctl show answered {len(blocks)} blocks for {count} units")
    return blocks


def settled(block: dict[str, str], enabled: bool | None, state: str | None) -> bool:
    """Whether the unit is exactly in the state asked (anything else: the stock module)."""
    if block.get("LoadState") != "loaded":
        return False
    if enabled is not None and block.get("UnitFileState") != ("enabled" if enabled else "disabled"):
        return False
    return state is None or block.get("ActiveState") == (
        "active" if state == "started" else "inactive"
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "list", "elements": "str", "required": True},
            "enabled": {"type": "bool"},
            "state": {"type": "str", "choices": ["started", "stopped"]},
            "daemon_reload": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    names: list[str] = module.params["name"]
    # (not required_one_of: daemon_reload's default would count as given)
    asked = [module.params[key] for key in ("enabled", "state")]
    if asked == [None, None] and not module.params["daemon_reload"]:
        module.fail_json(msg="one of the following is required: enabled, state, daemon_reload")
    for name in names:
        if not UNIT.fullmatch(name):
            module.fail_json(msg=f"name: {name!r} is not a unit name")
    if not names:
        module.exit_json(changed=False, units=[])
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command(
        [systemctl, "show", "--property=" + ",".join(PROPERTIES), "--", *names],
        environ_update={"LC_ALL": "C", "SYSTEMD_PAGER": ""},
    )
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip()}")
    try:
        blocks = parse_show(out, len(names))
    except ValueError as error:
        module.fail_json(msg=str(error))
    units: list[dict[str, Any]] = [
        {
            "name": name,
            "load_state": block.get("LoadState", ""),
            "active_state": block.get("ActiveState", ""),
            "unit_file_state": block.get("UnitFileState", ""),
            "settled": not module.params["daemon_reload"]
            and settled(block, module.params["enabled"], module.params["state"]),
            "changed": False,
        }
        for name, block in zip(names, blocks, strict=True)
    ]
    module.exit_json(changed=False, units=units)


if __name__ == "__main__":
    main()
