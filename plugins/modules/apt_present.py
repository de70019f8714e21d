#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apt_present
short_description: Make sure Debian packages are installed, asking dpkg first
version_added: 0.1.0
description:
  - The packages of O(name) installed with M(ansible.builtin.apt), as C(state=present)
    does, but only when one of them is not installed yet. Which ones are installed is
    read first from dpkg's database (C(dpkg-query)), which takes milliseconds; opening
    apt's cache to learn that nothing is to be done takes about half a second on each
    run of a role.
  - When every package is installed, nothing else runs (the package lists are not
    refreshed either, there is nothing to install from them) and the result is
    unchanged. When one is missing, or a name is not a plain package name (a version
    pin, an architecture, a wildcard, a C(.deb) file), the task is exactly
    M(ansible.builtin.apt) with the same options.
  - The work is done by the action plugin of the same name; this module is the dpkg
    query it runs on the host.
options:
  name:
    description: The packages.
    type: list
    elements: str
    required: true
  update_cache:
    description: Refresh the package lists before installing (only when one is missing).
    type: bool
    default: false
  cache_valid_time:
    description: With O(update_cache), lists younger than this many seconds are kept.
    type: int
    default: 0
  install_recommends:
    description: Install the recommended packages too (apt's own default when not given).
    type: bool
  state:
    description: Only V(present); use M(ansible.builtin.apt) for the other states.
    type: str
    choices: [present]
    default: present
attributes:
  check_mode:
    description: dpkg is read as in a real run; M(ansible.builtin.apt) predicts the install.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - Runs on Debian as root; reads dpkg's database with C(dpkg-query).
seealso:
  - module: ansible.builtin.apt
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Install nftables
  alteo.hostops.apt_present:
    name: [nftables]
    update_cache: true
    cache_valid_time: 3600
    install_recommends: false
"""

RETURN = r"""
missing:
  description: The packages of O(name) that dpkg did not list as installed.
  returned: always
  type: list
  elements: str
  sample: [nftables]
apt:
  description: Whether M(ansible.builtin.apt) was run (something was missing).
  returned: always
  type: bool
"""

import re

from ansible.module_utils.basic import AnsibleModule

# Debian Policy §5.6.1: a package name, nothing more (no version, architecture, pattern)
PLAIN = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def installed(output: str) -> set[str]:
    """The packages dpkg-query lists as installed ('${Package} ${db:Status-Abbrev}')."""
    found: set[str] = set()
    for line in output.splitlines():
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1][1:2] == "i" and parts[1][2:3] in (" ", ""):
            found.add(parts[0])
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "list", "elements": "str", "required": True},
            "update_cache": {"type": "bool", "default": False},
            "cache_valid_time": {"type": "int", "default": 0},
            "install_recommends": {"type": "bool"},
            "state": {"type": "str", "choices": ["present"], "default": "present"},
        },
        supports_check_mode=True,
    )
    names = module.params["name"]
    plain = [name for name in names if PLAIN.fullmatch(name)]
    found: set[str] = set()
    if plain:
        # exit status 1 when one of them is unknown to dpkg: the others are still listed
        rc, out, err = module.run_command(
            ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n", *plain]
        )
        if rc not in (0, 1):
            module.fail_json(msg="dpkg-query failed: " + err.strip(), rc=rc)
        found = installed(out)
    module.exit_json(changed=False, missing=[n for n in names if n not in found], apt=False)


if __name__ == "__main__":
    main()
