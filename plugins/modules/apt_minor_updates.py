#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apt_minor_updates
short_description: Apply the minor updates of a Debian host and hold the major ones
version_added: 0.1.0
description:
  - Lists the pending package updates (C(apt-get -s dist-upgrade)) and classifies each with
    the service contract's rule (§4.1.1, §4.1.3), the one function
    C(versions.classify_update) of this collection. An update is B(minor) when the version
    changes at its 3rd component or later, in the Debian revision or a C(+debNuM) suffix,
    B(major) when the epoch or the 1st or 2nd component changes.
  - Installs exactly the minor updates, at their candidate versions, and nothing else. The
    major ones are not installed (no C(apt-mark hold) is set either) and are returned in
    RV(held) to be planned with the client. A minor update whose dependencies would
    bring a major update or remove a package is held too.
  - Keeps local configuration files (dpkg C(--force-confdef --force-confold), ucf
    C(UCF_FORCE_CONFFOLD)), never prompts (C(DEBIAN_FRONTEND=noninteractive)), waits up
    to O(lock_timeout) seconds for the dpkg and apt locks, and first repairs a dpkg run
    that was interrupted (C(dpkg --configure -a)). Packages installed as dependencies
    stay marked as automatically installed.
  - Reports, without acting on it, whether the host needs a reboot (C(/run/reboot-required),
    or a newer kernel installed than the one running) and which services still run
    libraries or binaries that were replaced on disk (read from C(/proc/PID/maps)). The
    playbook restarts them, and reboots inside the maintenance window only.
options:
  update_cache:
    description:
      - Refresh the package lists before looking for updates. The lists are a cache, so
        this happens in check mode too and is never reported as a change.
    type: bool
    default: true
  lock_timeout:
    description:
      - How long to wait, in seconds, for each dpkg or apt lock held by another process
        before failing with the holder's PID.
    type: int
    default: 300
  exclude:
    description:
      - Packages never updated by this module, whatever the class of their update; they
        are reported in RV(held) with the reason C(excluded).
    type: list
    elements: str
    default: []
  approved_majors:
    description:
      - Major updates the client agreed to (contract §4.1.3), as package name to version;
        an empty version means the candidate. Each is applied like a minor update, to
        exactly that version, with the packages built from the same source whose major
        update is held too (at the same version, as apt needs them together, libpq5 with
        postgresql-15), and nothing else held (an upgrade that would drag another major
        update, a held package or a removal stays held, with the reason).
      - The outcome of each is returned in RV(approved).
    type: dict
    default: {}
attributes:
  check_mode:
    description: Predicts RV(applied) and RV(held) from apt's simulation; changes nothing.
    support: full
  diff_mode:
    description: The packages and versions before and after.
    support: full
notes:
  - Runs on Debian 12 and 13 as root. Uses apt-get, apt-mark, dpkg and dpkg-query only
    (no python3-apt needed).
  - Packages on hold with C(apt-mark hold) are never updated and are reported as held,
    like the minor updates that need them updated.
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Apply the minor updates, hold the majors
  alteo.hostops.apt_minor_updates:
    lock_timeout: 600
  register: patch

- name: Restart the services that still run replaced libraries
  ansible.builtin.systemd_service:
    name: "{{ item }}"
    state: restarted
  loop: "{{ patch.services_to_restart }}"

- name: What would be applied and held (changes nothing)
  alteo.hostops.apt_minor_updates:
  check_mode: true
  register: plan
"""

RETURN = r"""
applied:
  description: The packages upgraded (or, in check mode, that would be), with new
    dependencies (C(from) null).
  returned: always
  type: list
  elements: dict
  sample: [{name: nginx, from: 1.22.1-9+deb12u9, to: 1.22.1-9+deb12u11}]
held:
  description: Pending upgrades not applied, with the reason, C(major) for major updates.
    Other reasons - C(apt-mark hold), C(excluded), C(candidate is older), or why its
    dependencies go beyond a minor update or apt cannot install it (the dependency on a
    package on hold, for one).
  returned: always
  type: list
  elements: dict
  sample: [{name: postgresql-15, from: 15.18-0+deb12u1, to: 15.20-0+deb12u1, reason: major}]
failed_updates:
  description: Minor updates that apt could not apply, with apt's last words. When not
    empty the task fails.
  returned: always
  type: list
  elements: dict
  sample: [{name: apache2, from: 2.4.68-1~deb12u1, to: 2.4.71-1~deb12u1, msg: "..."}]
dpkg_repaired:
  description: Whether an interrupted dpkg run was completed with C(dpkg --configure -a)
    (in check mode - whether it would be).
  returned: always
  type: bool
reboot_required:
  description: Whether the host needs a reboot to run what is installed.
  returned: always
  type: bool
reboot_reasons:
  description: Why a reboot is needed.
  returned: always
  type: list
  elements: str
  sample: ["kernel 6.1.0-41-amd64 is installed, 6.1.0-40-amd64 runs"]
services_to_restart:
  description: The systemd services whose main processes map libraries or binaries that
    were replaced on disk.
  returned: always
  type: list
  elements: str
  sample: [nginx.service, php8.4-fpm.service]
approved:
  description: What became of each approved major update - C(applied) (or, in check
    mode, C(would apply)), C(held) with the reason, C(up to date) (the installed version
    is the approved one or newer, or no update is pending), C(not installed).
  returned: always
  type: list
  elements: dict
  sample: [{name: postgresql-15, from: 15.18-0+deb12u1, to: 15.20-0+deb12u1, outcome: applied}]
lock_wait_seconds:
  description: How long the module waited for dpkg and apt locks held by other processes.
  returned: always
  type: int
  sample: 12
systemd_reexec_required:
  description: Whether systemd itself (PID 1) maps replaced files (C(systemctl daemon-reexec)
    cures it).
  returned: always
  type: bool
"""

import fcntl
import os
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.alteo.hostops.plugins.module_utils.apt_updates import (
    Change,
    Held,
    Simulation,
    approved_updates,
    install_arguments,
    lock_holder,
    newest_kernel,
    parse_installed,
    parse_main_pids,
    parse_simulation,
    plan_updates,
    replaced_files,
    transaction_problems,
    unit_of_cgroup,
    unmet_dependencies,
)
from ansible_collections.alteo.hostops.plugins.module_utils.versions import parse_version

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")
DPKG_UPDATES = "/var/lib/dpkg/updates"
REBOOT_SENTINEL = "/run/reboot-required"
# Never prompt, keep local configuration files, leave restarts to the playbook.
ENVIRONMENT = {
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "UCF_FORCE_CONFFOLD": "1",
    "NEEDRESTART_SUSPEND": "1",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}
DPKG_OPTIONS = ("--force-confdef", "--force-confold")
# Upgrades only, at the given versions, without new recommended packages.
INSTALL = ("--only-upgrade", "--no-install-recommends", "install")
INSTALLED_FORMAT = "${Package} ${Version} ${db:Status-Abbrev}\n"


class Host:
    """apt, dpkg and /proc on the managed host, each command run once the locks are free."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.lock_timeout = module.params["lock_timeout"]
        self.lock_wait = 0.0  # seconds spent waiting for other processes' locks

    def fail(self, msg: str, **extra: Any) -> None:
        self.module.fail_json(msg=msg, **extra)

    def wait_for_locks(self) -> None:
        """Wait until no other process holds a dpkg or apt lock, or fail naming the holder."""
        for path in LOCKS:
            if not os.path.exists(path):
                continue
            start = time.monotonic()
            while not _lock_is_free(path):
                if time.monotonic() - start > self.lock_timeout:
                    self.fail(
                        "%s is held by %s for more than %d s (lock_timeout)"
                        % (path, _holder(path), self.lock_timeout)
                    )
                time.sleep(1)
            self.lock_wait += time.monotonic() - start

    def run(
        self, argv: Sequence[str], check: bool = True, locks: bool = True
    ) -> tuple[int, str, str]:
        if locks:
            self.wait_for_locks()
        rc, out, err = self.module.run_command(argv, environ_update=ENVIRONMENT)
        if check and rc != 0:
            self.fail(
                "%s failed (%d): %s" % (" ".join(argv), rc, _last_lines(err or out)),
                rc=rc,
                stdout=out,
                stderr=err,
            )
        return rc, out, err

    def apt_get(self, *args: str, check: bool = True, locks: bool = True) -> tuple[int, str, str]:
        argv = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=%d" % self.lock_timeout]
        for option in DPKG_OPTIONS:
            argv += ["-o", "Dpkg::Options::=%s" % option]
        return self.run(argv + list(args), check=check, locks=locks)

    def simulate(self, *args: str) -> Simulation:
        _rc, out, _err = self.apt_get("-s", *args, locks=False)
        return parse_simulation(out)

    def simulate_install(
        self, changes: Iterable[Change]
    ) -> tuple[Simulation, None] | tuple[None, str]:
        """apt's simulation of installing the changes, or None and the reason apt refuses."""
        rc, out, err = self.apt_get(
            "-s", *INSTALL, *install_arguments(changes), check=False, locks=False
        )
        if rc != 0:
            return None, "; ".join(unmet_dependencies(out)) or _last_lines(err or out)
        return parse_simulation(out), None

    def install(self, changes: Iterable[Change]) -> tuple[int, str, str]:
        return self.apt_get("-y", *INSTALL, *install_arguments(changes), check=False)

    def apt_mark(self, what: str) -> set[str]:
        _rc, out, _err = self.run(["apt-mark", what], locks=False)
        return set(out.split())

    def installed(self) -> dict[str, str]:
        _rc, out, _err = self.run(["dpkg-query", "-W", "-f", INSTALLED_FORMAT], locks=False)
        return parse_installed(out)

    def sources(self) -> dict[str, str]:
        """{package: its source package} of the installed packages."""
        _rc, out, _err = self.run(
            ["dpkg-query", "-W", "-f", "${Package} ${source:Package}\n"], locks=False
        )
        pairs = (line.split() for line in out.splitlines())
        return {pair[0]: pair[1] for pair in pairs if len(pair) == 2}

    def dpkg_interrupted(self) -> bool:
        try:
            pending = [name for name in os.listdir(DPKG_UPDATES) if name.isdigit()]
        except OSError:
            pending = []
        if pending:
            return True
        _rc, out, _err = self.run(["dpkg", "--audit"], check=False, locks=False)
        return bool(out.strip())

    def repair_dpkg(self) -> None:
        self.run(["dpkg", *DPKG_OPTIONS, "--configure", "-a"])


def _lock_is_free(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def _holder(path: str) -> str:
    try:
        pid = lock_holder(_read("/proc/locks"), os.stat(path).st_ino)
    except OSError:
        pid = None
    if pid is None:
        return "another process"
    try:
        return "PID %d (%s)" % (pid, _read("/proc/%d/comm" % pid).strip())
    except OSError:
        return "PID %d" % pid


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as stream:
        return stream.read()


def _last_lines(text: str, count: int = 3) -> str:
    return " / ".join(text.strip().splitlines()[-count:])


def minor_transaction(
    host: Host, minor: Sequence[Change], untouchable: Collection[str]
) -> tuple[list[Change], list[Held]]:
    """What installing the minor updates changes, and the updates held for their dependencies.

    The whole set is simulated first; if apt refuses it or would go further than minor
    updates, each update is simulated alone and the ones that drag a major update, a
    held package or a removal, or that apt refuses, are held.
    """
    if not minor:
        return [], []
    planned = {change.name for change in minor}
    simulation, problems = _simulate(host, minor, planned, untouchable)
    if simulation is not None and not problems:
        return _in_order(simulation.changes), []
    kept: list[Change] = []
    held: list[Held] = []
    for change in minor:
        _alone, problems = _simulate(host, [change], planned, untouchable)
        if problems:
            held.append(Held(change, "; ".join(problems)))
        else:
            kept.append(change)
    if not kept:
        return [], held
    simulation, problems = _simulate(host, kept, {change.name for change in kept}, untouchable)
    if problems or simulation is None:
        reason = "dependencies go beyond minor updates: " + "; ".join(problems)
        return [], held + [Held(change, reason) for change in kept]
    return _in_order(simulation.changes), held


def _simulate(
    host: Host, changes: Iterable[Change], planned: Collection[str], untouchable: Collection[str]
) -> tuple[Simulation | None, list[str]]:
    simulation, refusal = host.simulate_install(changes)
    if simulation is None:
        return None, ["apt cannot install it: %s" % refusal]
    return simulation, transaction_problems(simulation, planned, untouchable)


def _in_order(changes: Iterable[Change]) -> list[Change]:
    return sorted(changes, key=lambda change: change.name)


def apply(
    host: Host, minor: Sequence[Change], changes: Sequence[Change]
) -> tuple[list[Change], list[dict[str, Any]]]:
    """Install the minor updates; return what was applied and the updates that failed."""
    auto_before = host.apt_mark("showauto")
    rc, out, err = host.install(minor)
    failures: dict[str, str] = {}
    if rc != 0:
        # One update broke the batch: complete what dpkg left, then try each on its own.
        if host.dpkg_interrupted():
            host.repair_dpkg()
        installed = host.installed()
        for change in minor:
            if installed.get(change.name) == change.candidate:
                continue
            one_rc, one_out, one_err = host.install([change])
            if one_rc != 0:
                failures[change.name] = _last_lines(one_err or one_out)
            if host.dpkg_interrupted():
                host.repair_dpkg()
    installed = host.installed()
    # apt marks what it is asked to install as installed by hand: give the
    # dependencies their automatic mark back (autoremove keeps working).
    to_mark = sorted((auto_before - host.apt_mark("showauto")) & set(installed))
    if to_mark:
        host.run(["apt-mark", "auto", *to_mark])
    applied = [change for change in changes if installed.get(change.name) == change.candidate]
    failed: list[dict[str, Any]] = []
    for change in minor:
        if installed.get(change.name) != change.candidate:
            message = failures.get(change.name) or _last_lines(err or out) or "not installed"
            failed.append(dict(change.as_dict(), msg=message))
    return applied, failed


def services_to_restart(host: Host) -> tuple[list[str], bool]:
    """Services whose main process (or its children) maps replaced files, and whether PID 1 does.

    Only the main process and its direct children count: when sshd restarts, the
    sessions it had forked live on, orphaned, on the old libraries, but the service does
    not need another restart for them.
    """
    candidates: dict[str, list[tuple[int, int]]] = {}  # unit -> [(pid, ppid)]
    pid1 = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if not replaced_files(_read("/proc/%d/maps" % pid)):
                continue
            if pid == 1:
                pid1 = True
                continue
            ppid = int(_read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[1])
            unit = unit_of_cgroup(_read("/proc/%d/cgroup" % pid))
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if unit:
            candidates.setdefault(unit, []).append((pid, ppid))
    if not candidates:
        return [], pid1
    _rc, out, _err = host.run(
        ["systemctl", "show", "-p", "Id", "-p", "MainPID", "--", *sorted(candidates)],
        locks=False,
    )
    main_pids = parse_main_pids(out)
    services = []
    for unit, processes in sorted(candidates.items()):
        main = main_pids.get(unit, 0) or 1  # no main PID known: its daemons are PID 1's children
        if any(main in (pid, ppid) for pid, ppid in processes):
            services.append(unit)
    return services, pid1


def reboot_reasons() -> list[str]:
    reasons = []
    if os.path.exists(REBOOT_SENTINEL):
        try:
            packages = _read(REBOOT_SENTINEL + ".pkgs").split()
        except OSError:
            packages = []
        detail = " (%s)" % ", ".join(sorted(set(packages))) if packages else ""
        reasons.append("%s exists%s" % (REBOOT_SENTINEL, detail))
    try:
        kernels = [
            name[len("vmlinuz-") :] for name in os.listdir("/boot") if name.startswith("vmlinuz-")
        ]
    except OSError:
        kernels = []
    newest = newest_kernel(kernels)
    running = os.uname().release
    if newest and newest != running:
        reasons.append("kernel %s is installed, %s runs" % (newest, running))
    return reasons


def _diff(changes: Sequence[Change]) -> dict[str, str]:
    def lines(side: str) -> str:
        return "".join(
            "%s %s\n" % (change.name, getattr(change, side) or "(not installed)")
            for change in changes
        )

    return {
        "before": lines("installed"),
        "after": lines("candidate"),
        "before_header": "installed packages",
        "after_header": "after the minor updates",
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            update_cache=dict(type="bool", default=True),
            lock_timeout=dict(type="int", default=300),
            exclude=dict(type="list", elements="str", default=[]),
            approved_majors=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    if module.params["lock_timeout"] < 0:
        module.fail_json(
            msg="lock_timeout must be 0 or more, got %d" % module.params["lock_timeout"]
        )
    approved: dict[str, str | None] = {}
    for name, given in module.params["approved_majors"].items():
        version = str(given or "").strip() or None
        try:
            if version is not None:
                parse_version(version)
        except ValueError as err:
            module.fail_json(msg="approved_majors: %s: %s" % (name, err))
        approved[str(name)] = version
    host = Host(module)

    repaired = False
    if host.dpkg_interrupted():
        repaired = True
        if not module.check_mode:
            host.repair_dpkg()
    if module.params["update_cache"]:
        host.apt_get("update")

    # Held packages included, so that they are reported (and never installed: the
    # install below runs without this option, and apt refuses to change them).
    pending = host.simulate("-o", "APT::Ignore-Hold=true", "dist-upgrade")
    holds = host.apt_mark("showhold")
    exclude = set(module.params["exclude"])
    plan = plan_updates(pending.upgrades, holds, exclude)
    # majors the client agreed to join the minor updates, at the approved version
    majors, plan_held, outcomes, siblings = approved_updates(
        plan.held,
        approved,
        host.installed() if approved else {},
        host.sources() if approved else {},
    )
    wanted = list(plan.minor) + majors
    changes, held_for_dependencies = minor_transaction(host, wanted, holds | exclude)
    dragging = {entry.change for entry in held_for_dependencies}
    minor = [change for change in wanted if change not in dragging]
    held = sorted(
        list(plan_held) + list(held_for_dependencies), key=lambda entry: entry.change.name
    )

    applied: list[Change] = changes
    failed: list[dict[str, Any]] = []
    if changes and not module.check_mode:
        applied, failed = apply(host, minor, changes)
    done = {change.name for change in applied}
    approved_names = {change.name for change in majors}
    for change in majors:
        if change.name in siblings:
            continue  # reported with the approved package it comes with
        outcome: dict[str, Any] = dict(change.as_dict())
        if change.name in done:
            outcome["outcome"] = "would apply" if module.check_mode else "applied"
        else:
            outcome["outcome"] = "held"
            outcome["reason"] = next(
                (entry.reason for entry in held_for_dependencies if entry.change == change),
                next((f["msg"] for f in failed if f["name"] == change.name), "not applied"),
            )
        outcomes[change.name] = outcome
    services, pid1 = services_to_restart(host)
    reasons = reboot_reasons()
    result = dict(
        changed=bool(applied) or repaired,
        applied=[
            dict(change.as_dict(), approved_major=True, approved_with=siblings.get(change.name))
            if change.name in approved_names
            else change.as_dict()
            for change in applied
        ],
        held=[entry.as_dict() for entry in held],
        failed_updates=failed,
        approved=[outcomes[name] for name in sorted(outcomes)],
        dpkg_repaired=repaired,
        reboot_required=bool(reasons),
        reboot_reasons=reasons,
        services_to_restart=services,
        systemd_reexec_required=pid1,
        lock_wait_seconds=round(host.lock_wait),
    )
    if module._diff and applied:
        result["diff"] = _diff(applied)
    if failed:
        module.fail_json(
            msg="%d minor update(s) failed: %s"
            % (len(failed), ", ".join(entry["name"] for entry in failed)),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
