#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: web_password_hash
short_description: The bcrypt hash of a password for a Prometheus web configuration file
version_added: 0.1.0
description:
  - Gives the bcrypt hash of O(password) for the C(basic_auth_users) of a web
    configuration file read by Prometheus, Alertmanager and the exporters
    (C(--web.config.file), the Prometheus exporter toolkit).
  - A bcrypt hash is salted, so hashing again gives another text every time. When the file
    O(path) already holds a hash for O(user) that matches O(password), that hash is
    returned unchanged, so that a template writing it back changes nothing; otherwise a
    new hash is made (cost O(cost)).
  - Changes nothing on the host; the playbook writes the file.
options:
  password:
    description: The password (from Ansible Vault or the controller's secrets; never logged).
    type: str
    required: true
  user:
    description: The user name whose current hash is looked up in O(path).
    type: str
    required: true
  path:
    description: The web configuration file; it may not exist yet.
    type: path
    required: true
  cost:
    description: The bcrypt cost of a new hash (4 to 31).
    type: int
    default: 10
attributes:
  check_mode:
    description: Computes the same hash; changes nothing in any mode.
    support: full
  diff_mode:
    description: Nothing to show; the module changes nothing.
    support: none
requirements:
  - python3-bcrypt (Debian package) on the host.
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Hash the scrape password (kept when it still matches)
  alteo.hostops.web_password_hash:
    password: "{{ scrape_password }}"
    user: prometheus
    path: /etc/prometheus/node-exporter-web.yml
  register: scrape_hash
  no_log: true
"""

RETURN = r"""
hash:
  description: The bcrypt hash (the current one when it matches, else a new one).
  type: str
  returned: success
reused:
  description: Whether the hash already in O(path) was kept.
  type: bool
  returned: success
"""

import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import bcrypt
except ImportError:  # pragma: no cover - reported by the module
    bcrypt = None

_HASH = r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}"


def current_hash(text: str, user: str) -> str | None:
    """The bcrypt hash of USER in a web configuration file's text, or None."""
    pattern = r"^\s+['\"]?%s['\"]?\s*:\s*['\"]?(%s)['\"]?\s*$" % (re.escape(user), _HASH)
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1) if found else None


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            password=dict(type="str", required=True, no_log=True),
            user=dict(type="str", required=True),
            path=dict(type="path", required=True),
            cost=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    if bcrypt is None:
        module.fail_json(msg=missing_required_lib("bcrypt (Debian package python3-bcrypt)"))
    password = module.params["password"].encode("utf-8")
    cost = module.params["cost"]
    if not 4 <= cost <= 31:
        module.fail_json(msg="cost must be 4 to 31, got %d" % cost)
    try:
        with open(module.params["path"], encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    except OSError as err:
        module.fail_json(msg="cannot read %s: %s" % (module.params["path"], err))
    current = current_hash(text, module.params["user"])
    if current and bcrypt.checkpw(password, current.encode("ascii")):
        module.exit_json(changed=False, hash=current, reused=True)
    new = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode("ascii")
    module.exit_json(changed=False, hash=new, reused=False)


if __name__ == "__main__":
    main()
