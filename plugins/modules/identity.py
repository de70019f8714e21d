#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: identity
short_description: Set a Debian host's name and time zone, reading the files first
version_added: 0.1.0
description:
  - The host's name O(hostname) and time zone O(timezone), as M(ansible.builtin.hostname)
    (its V(debian) strategy) and M(community.general.timezone) set them, but reading first
    what they would ask (C(/etc/hostname) and the kernel's host name, and the link
    C(/etc/localtime) that C(timedatectl) reads its zone from).
  - A name found in both places, or a zone the link already names (C(/usr/share/zoneinfo/)
    followed by the zone, absolute or relative as C(timedatectl) writes it; the zone's
    file there; C(timedatectl) installed), is left alone and reported unchanged. Anything
    else goes to the stock module, which then decides as a task of its own would; its
    warnings and diffs are the task's.
  - M(community.general.timezone) asks systemd-timedated over D-Bus (started on demand,
    about 140 ms), and M(ansible.builtin.hostname) (its V(debian) strategy is
    C(hostnamectl), systemd-hostnamed over D-Bus) resolves the host's FQDN twice, even
    when nothing is to be done.
  - The work is done by the action plugin of the same name; this module is the query it
    runs on the host.
options:
  hostname:
    description: The host's short name (as given to M(ansible.builtin.hostname)).
    type: str
  timezone:
    description: The IANA time zone (such as V(Europe/Paris)).
    type: str
attributes:
  check_mode:
    description:
      - The files are read as in a real run; the stock modules predict the rest.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - One of O(hostname) and O(timezone) is required.
seealso:
  - module: ansible.builtin.hostname
  - module: community.general.timezone
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Set the hostname and the time zone
  alteo.hostops.identity:
    hostname: web01
    timezone: Europe/Paris
"""

RETURN = r"""
hostname:
  description:
    - What was read (C(permanent) from C(/etc/hostname), C(current) from the kernel),
      whether it was left alone (C(settled)) and whether M(ansible.builtin.hostname)
      changed it (C(changed)).
  returned: when O(hostname) is given
  type: dict
  sample: {permanent: web01, current: web01, settled: true, changed: false}
timezone:
  description:
    - The target of C(/etc/localtime) (C(link)), whether it was left alone (C(settled)) and
      whether M(community.general.timezone) changed it (C(changed)).
  returned: when O(timezone) is given
  type: dict
  sample: {link: /usr/share/zoneinfo/Europe/Paris, settled: true, changed: false}
"""

import os
import socket
from typing import Any

from ansible.module_utils.basic import AnsibleModule

ZONEINFO = ("/usr/share/zoneinfo/", "../usr/share/zoneinfo/")


def read_hostname(path: str = "/etc/hostname") -> str | None:
    """The permanent name, as Debian's hostname strategy reads it; None when unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_link(path: str = "/etc/localtime") -> str | None:
    """The link's target as written, None when it is not a link."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def zone_settled(link: str | None, zone: str, zoneinfo: str = ZONEINFO[0]) -> bool:
    """Whether the link names the zone the way timedatectl reads it, and the zone's file
    is there (a relative zone only; anything else is the stock module's to judge)."""
    if link is None or not zone or zone.startswith("/") or ".." in zone.split("/"):
        return False
    if not os.path.isfile(os.path.join(zoneinfo, zone)):
        return False
    return any(link == prefix + zone for prefix in ZONEINFO)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"hostname": {"type": "str"}, "timezone": {"type": "str"}},
        required_one_of=[("hostname", "timezone")],
        supports_check_mode=True,
    )
    result: dict[str, Any] = {"changed": False}
    name = module.params["hostname"]
    if name is not None:
        permanent, current = read_hostname(), socket.gethostname()
        result["hostname"] = {
            "permanent": permanent,
            "current": current,
            "settled": bool(name) and permanent == name and current == name,
            "changed": False,
        }
    zone = module.params["timezone"]
    if zone is not None:
        link = read_link()
        # without timedatectl the stock module keeps /etc/timezone too: its to judge
        systemd = module.get_bin_path("timedatectl") is not None
        result["timezone"] = {
            "link": link,
            "settled": systemd and zone_settled(link, zone),
            "changed": False,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
