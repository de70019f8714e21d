#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apache_modules
short_description: Enable and disable Apache's modules, reading Debian's links first
version_added: 0.1.0
description:
  - The modules of O(present) enabled and those of O(absent) disabled, as
    M(community.general.apache2_module) does one module, but reading first the links
    C(a2enmod) makes in C(/etc/apache2/mods-enabled) for all of them (a few stat calls).
  - A module of O(present) whose C(.load) link is there (and its C(.conf) link, when
    C(mods-available) has a C(.conf)), both pointing at C(mods-available), is left alone
    and reported unchanged; so is a module of O(absent) with neither link. Every other goes
    to M(community.general.apache2_module) with the state asked, in this order, the MPMs
    (C(mpm_*)) of O(absent), those of O(present) (Apache's configuration loads without an
    MPM only until the new one is enabled), then the other modules of O(absent), then
    those of O(present), each list in the order given; it then decides, as a task of its
    own would. Its warnings and diffs are the task's.
  - M(community.general.apache2_module) runs C(apache2ctl -M), which reads Apache's whole
    configuration, for every module even when nothing is to be done (about 40 ms a
    module).
  - The work is done by the action plugin of the same name; this module is the query it
    runs on the host.
options:
  present:
    description: The modules to enable (C(a2enmod)'s names, such as V(proxy_fcgi)).
    type: list
    elements: str
    default: []
  absent:
    description: The modules to disable.
    type: list
    elements: str
    default: []
  ignore_configcheck:
    description:
      - Given to M(community.general.apache2_module) for the MPMs (C(mpm_*)) it is asked
        about (an MPM switched while Apache's configuration does not load without one).
        The other modules are always asked about with Apache's configuration checked (a
        configuration that does not load fails the task rather than leaving a module as
        it is).
    type: bool
    default: false
attributes:
  check_mode:
    description:
      - The links are read as in a real run; M(community.general.apache2_module) predicts
        the rest.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - Debian's layout (C(/etc/apache2/mods-available), C(mods-enabled)) and its C(a2enmod).
  - A module named in both O(present) and O(absent) is an error.
seealso:
  - module: community.general.apache2_module
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: The event MPM and the modules the vhosts use; no mod_status
  alteo.hostops.apache_modules:
    absent: [mpm_prefork, mpm_worker, status]
    present: [mpm_event, proxy, proxy_fcgi, rewrite]
    ignore_configcheck: true
"""

RETURN = r"""
modules:
  description:
    - Each module asked, in the order it is acted on (see above), with its
      C(name), the C(state) asked, whether it was left alone (C(settled)) and whether
      M(community.general.apache2_module) changed it (C(changed)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: status
      state: absent
      settled: true
      changed: false
"""

import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# a2enmod's module names (the file names in mods-available, without .load)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
APACHE = "/etc/apache2"


def _links_to(link: str, target: str) -> bool:
    """Whether link is a symbolic link that resolves to the file target."""
    return os.path.islink(link) and os.path.realpath(link) == os.path.realpath(target)


def settled(name: str, state: str, root: str = APACHE) -> bool:
    """Whether the module's links in mods-enabled are exactly what a2enmod (present) or
    a2dismod (absent) leave; anything else is the stock module's to judge."""
    enabled = os.path.join(root, "mods-enabled", name)
    available = os.path.join(root, "mods-available", name)
    if state == "absent":
        return not any(os.path.lexists(enabled + suffix) for suffix in (".load", ".conf"))
    if not os.path.isfile(available + ".load") or not _links_to(
        enabled + ".load", available + ".load"
    ):
        return False
    if os.path.isfile(available + ".conf"):
        return _links_to(enabled + ".conf", available + ".conf")
    return not os.path.lexists(enabled + ".conf")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "present": {"type": "list", "elements": "str", "default": []},
            "absent": {"type": "list", "elements": "str", "default": []},
            "ignore_configcheck": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    present: list[str] = module.params["present"]
    absent: list[str] = module.params["absent"]
    for key, names in (("absent", absent), ("present", present)):
        for name in names:
            if not NAME.fullmatch(name):
                module.fail_json(msg=f"{key}: {name!r} is not an Apache module's name")
    both = sorted(set(present) & set(absent))
    if both:
        module.fail_json(msg=f"present and absent both name {', '.join(both)}")
    modules: list[dict[str, Any]] = [
        {"name": name, "state": state, "settled": settled(name, state), "changed": False}
        for state, names in in_order(present, absent)
        for name in names
    ]
    module.exit_json(changed=False, modules=modules)


def in_order(present: list[str], absent: list[str]) -> list[tuple[str, list[str]]]:
    """The order to act in: the MPMs first, the disabled before the enabled (Apache's
    configuration loads without an MPM only until the new one is enabled), then the other
    modules, the disabled first; each list in the order given."""
    def mpm(names: list[str], wanted: bool) -> list[str]:
        return [name for name in names if name.startswith("mpm_") == wanted]

    return [
        ("absent", mpm(absent, True)),
        ("present", mpm(present, True)),
        ("absent", mpm(absent, False)),
        ("present", mpm(present, False)),
    ]


if __name__ == "__main__":
    main()
