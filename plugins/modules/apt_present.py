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
  - With O(hold_start), the daemons named there that are not installed yet (no unit
    file, no init script) are not started by the packages' maintainer scripts during
    that installation (C(/usr/sbin/policy-rc.d) answers 101 to their start, for that
    installation only), so that a role that configures a daemon and then restarts it
    spares a start with Debian's default configuration and the stop after it (a
    libmilter daemon such as OpenDKIM takes 5 s to stop). The role itself starts the daemon once
    configured (its handler's restart, its "enabled and running" task). A daemon already
    installed is not held (an upgrade pulled in by the installation restarts it as
    usual). When the host already has a C(policy-rc.d) of its own, it is left alone and
    nothing is held; one of this module's left by an interrupted run is removed by the
    next task of the module on the host (reported as a change).
  - The work is done by the action plugin of the same name; this module is the dpkg
    query it runs on the host, and the hold around M(ansible.builtin.apt).
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
  hold_start:
    description:
      - Services (unit names, with or without C(.service)) whose start, restart or
        reload by the maintainer scripts is refused while the missing packages are
        installed. Nothing is held when nothing is missing, nor in check mode, nor a
        service already installed (its unit file, its template's or its init script).
    type: list
    elements: str
    default: []
  hold_step:
    description:
      - Internal, set by the action plugin; V(query) lists what is missing (and removes
        a C(policy-rc.d) of this module's left by an interrupted run), V(hold) writes the
        C(policy-rc.d) for the daemons not installed yet (unless the host has one of its
        own), V(release) removes it when it is the one V(hold) wrote.
    type: str
    choices: [query, hold, release]
    default: query
attributes:
  check_mode:
    description:
      - dpkg is read as in a real run; M(ansible.builtin.apt) predicts the install.
      - With O(update_cache), when something is to be installed, the package lists are
        refreshed for real first (when older than O(cache_valid_time)), so that the
        prediction is made from current lists.
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

- name: Install OpenDKIM, started by the role once configured (not by its package)
  alteo.hostops.apt_present:
    name: [opendkim, opendkim-tools]
    hold_start: [opendkim]
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
held:
  description:
    - The services whose start the installation held (empty when nothing was installed,
      in check mode, when the host has a C(policy-rc.d) of its own, and without the
      daemons installed before).
  returned: always
  type: list
  elements: str
  sample: [opendkim]
"""

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

# Debian Policy §5.6.1: a package name, nothing more (no version, architecture, pattern)
PLAIN = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# A unit name as the roles give it (systemd.unit(5) allows more; these are daemons')
UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.@-]*")
POLICY = "/usr/sbin/policy-rc.d"
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
INIT_DIR = "/etc/init.d"
MARK = "# alteo.hostops.apt_present: held for one installation"


def policy_script(units: list[str]) -> str:
    """The policy-rc.d that refuses (101) the start, restart or reload of these units and
    allows (0) everything else. invoke-rc.d calls it as 'policy-rc.d [--options] <id>
    <actions> [<runlevel>]' with an init script's name, deb-systemd-invoke as
    'policy-rc.d <unit> <action>' with a unit's."""
    names = sorted({unit.removesuffix(".service") for unit in units})
    return (
        "#!/bin/sh\n"
        f"{MARK}\n"
        "# (removed after it; one left by an interrupted run goes at the next task)\n"
        'while [ $# -gt 0 ]; do case "$1" in --*) shift ;; *) break ;; esac; done\n'
        'unit="${1%.service}"\n'
        f'case " {" ".join(names)} " in\n'
        '  *" $unit "*)\n'
        '    case "$2" in *start*|*reload*) exit 101 ;; esac ;;\n'
        "esac\n"
        "exit 0\n"
    )


def unit_present(
    unit: str, unit_dirs: tuple[str, ...] = UNIT_DIRS, init_dir: str = INIT_DIR
) -> bool:
    """Whether a daemon is installed already: its unit file (a template's, for an
    instance such as postgresql@17-main) or its init script."""
    name = unit.removesuffix(".service")
    if "@" in name:
        name = name.split("@", 1)[0] + "@"
    return any(os.path.exists(os.path.join(d, name + ".service")) for d in unit_dirs) or (
        "@" not in name and os.path.exists(os.path.join(init_dir, name))
    )


def is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return MARK in handle.read(4096)
    except OSError:  # none, or not a file: not ours
        return False


def hold(path: str, units: list[str]) -> bool:
    """Write the policy that holds the units; False (nothing written) when the host has a
    policy-rc.d of its own."""
    if os.path.lexists(path) and not is_ours(path):
        return False
    folder = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(prefix=".policy-rc.d.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(policy_script(units))
        os.chmod(temporary, 0o755)  # noqa: S103  # a script in /usr/sbin, as dpkg expects it
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def release(path: str) -> bool:
    """Remove the policy when it is the one hold() wrote; True when removed."""
    if not is_ours(path):
        return False
    os.unlink(path)
    return True


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
            "hold_start": {"type": "list", "elements": "str", "default": []},
            "hold_step": {
                "type": "str",
                "choices": ["query", "hold", "release"],
                "default": "query",
            },
        },
        supports_check_mode=True,
    )
    units = module.params["hold_start"]
    for unit in units:
        if not UNIT.fullmatch(unit):
            module.fail_json(msg=f"hold_start: {unit!r} is not a unit name")
    step = module.params["hold_step"]
    if step != "query":
        if module.check_mode:
            module.exit_json(changed=False, held=[])
        if step == "hold":
            fresh = sorted(unit for unit in units if not unit_present(unit))
            held = hold(POLICY, fresh) if fresh else False
            module.exit_json(changed=False, held=fresh if held else [])
        module.exit_json(changed=False, released=release(POLICY))
    # a hold left by an interrupted run: removed (predicted in check mode)
    stale = is_ours(POLICY) if module.check_mode else release(POLICY)
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
    module.exit_json(
        changed=stale,
        missing=[n for n in names if n not in found],
        apt=False,
        held=[],
        released=stale,
    )


if __name__ == "__main__":
    main()
