# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pending apt updates under the contract's rule: what to apply, what to hold, what follows.

The decisions of the ``alteo.hostops.apt_minor_updates`` module, as plain functions
of the text that apt, dpkg and the kernel give (so they are tested with tables, without
a host):

* :func:`parse_simulation` reads ``apt-get -s`` output: the upgrades, new packages and
  removals apt would make;
* :func:`plan_updates` splits the pending upgrades into the minor ones, applied by
  routine, and the held ones (major per :func:`versions.classify_update`, on hold with
  ``apt-mark``, or excluded), which are planned with the client (§4.1.1, §4.1.3);
* :func:`transaction_problems` says why installing the minor set would go further than
  allowed (a major upgrade or a removal dragged in by a dependency), and
  :func:`unmet_dependencies` why apt refuses it (a package on hold, for one);
* :func:`replaced_files`, :func:`unit_of_cgroup`, :func:`parse_main_pids` and
  :func:`newest_kernel` tell which services still run replaced libraries and whether
  the kernel needs a reboot.

Only the Python standard library is used: this file runs on managed hosts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import cmp_to_key
from typing import Any, NamedTuple

from .versions import MAJOR, UNCHANGED, classify_update, compare_versions

HELD_MAJOR = "major"
HELD_APT_MARK = "apt-mark hold"
HELD_EXCLUDED = "excluded"
HELD_DOWNGRADE = "candidate is older"

# "Inst nginx [1.22.1-9+deb12u9] (1.22.1-9+deb12u11 Debian-Security:12/... [amd64]) []"
# "Inst linux-image-6.1.0-40-amd64 (6.1.192-1 Debian:12.13/oldstable [amd64])"
_INST = re.compile(r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]\s]+)\] )?\((?P<new>\S+)[ )]")
# "Remv apache2-doc [2.4.68-1~deb12u1]" (removals are listed as "Remv", purges too)
_REMV = re.compile(r"^(?:Remv|Purg) (?P<name>\S+)")
# Mapped files that are never code: data, caches, shared memory.
_NOT_CODE = ("/usr/share/", "/usr/lib/locale/")
_CODE_DIRS = ("/usr/", "/lib", "/bin/", "/sbin/", "/opt/")
_DELETED = " (deleted)"


class Change(NamedTuple):
    """One package apt would change: ``installed`` is None for a new package."""

    name: str
    installed: str | None
    candidate: str

    def as_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "from": self.installed, "to": self.candidate}


class Held(NamedTuple):
    """A pending upgrade that is not applied, and why."""

    change: Change
    reason: str

    def as_dict(self) -> dict[str, str | None]:
        return {**self.change.as_dict(), "reason": self.reason}


class Simulation(NamedTuple):
    changes: tuple[Change, ...]
    removals: tuple[str, ...]

    @property
    def upgrades(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.installed is not None)


class Plan(NamedTuple):
    minor: tuple[Change, ...]
    held: tuple[Held, ...]


def _package(name: str) -> str:
    """``libc6:amd64`` -> ``libc6``: the plan speaks of packages, not architectures."""
    return name.split(":", 1)[0]


def parse_simulation(text: str) -> Simulation:
    """Read the ``Inst``/``Remv`` lines of ``apt-get -s`` output (other lines are ignored)."""
    changes: dict[str, Change] = {}
    removals: list[str] = []
    for line in text.splitlines():
        inst = _INST.match(line)
        if inst:
            name = _package(inst.group("name"))
            changes[name] = Change(name, inst.group("old"), inst.group("new"))
            continue
        remv = _REMV.match(line)
        if remv:
            removals.append(_package(remv.group("name")))
    return Simulation(tuple(changes.values()), tuple(dict.fromkeys(removals)))


def plan_updates(
    pending: Iterable[Change],
    holds: Collection[str] = (),
    exclude: Collection[str] = (),
) -> Plan:
    """Split pending upgrades into the minor ones to apply and the held ones.

    New packages in ``pending`` (``installed`` None) are not updates and are ignored:
    apt installs them only as dependencies of what is applied. A package on hold with
    ``apt-mark`` or in ``exclude`` is held whatever its class; a candidate older than the
    installed version (a pin, a downgraded archive) is never applied.
    """
    minor: list[Change] = []
    held: list[Held] = []
    for change in sorted(pending, key=lambda c: c.name):
        if change.installed is None:
            continue
        update_class = classify_update(change.installed, change.candidate)
        if update_class == UNCHANGED:
            continue
        if change.name in holds:
            held.append(Held(change, HELD_APT_MARK))
        elif change.name in exclude:
            held.append(Held(change, HELD_EXCLUDED))
        elif compare_versions(change.candidate, change.installed) < 0:
            held.append(Held(change, HELD_DOWNGRADE))
        elif update_class == MAJOR:
            held.append(Held(change, HELD_MAJOR))
        else:
            minor.append(change)
    return Plan(tuple(minor), tuple(held))


def approved_updates(
    held: Iterable[Held],
    approved: dict[str, str | None],
    installed: dict[str, str],
    sources: dict[str, str] | None = None,
) -> tuple[list[Change], list[Held], dict[str, dict[str, Any]], dict[str, str]]:
    """Take the approved majors out of the held ones: the changes to apply, the rest held,
    the outcome of every approval that has nothing to apply, and the packages applied
    with an approved one ({package: approved package}).

    An approval covers the packages built from the same source (``sources``: package to
    source package) whose major update is held too, at the same version: apt needs them
    together (postgresql-15 15.20 wants libpq5 and postgresql-client-15 15.20). Nothing
    else held is taken.
    """
    sources = sources or {}
    held = list(held)
    by_source = {sources.get(name, name): name for name in approved}
    changes: list[Change] = []
    still_held: list[Held] = []
    outcomes: dict[str, dict[str, Any]] = {}
    siblings: dict[str, str] = {}
    for entry in held:
        name = entry.change.name
        parent = name if name in approved else by_source.get(sources.get(name, name))
        if entry.reason != HELD_MAJOR or parent is None:
            still_held.append(entry)
            continue
        version = approved[parent] or entry.change.candidate
        if entry.change.installed and compare_versions(version, entry.change.installed) <= 0:
            still_held.append(entry)  # the approved version is already there
            continue
        changes.append(Change(name, entry.change.installed, version))
        if parent != name:
            siblings[name] = parent
    pending = {entry.change.name: entry for entry in held}
    for name, wanted in approved.items():
        if name in {change.name for change in changes}:
            continue
        current = installed.get(name)
        other = pending.get(name)
        if other is not None and other.reason != HELD_MAJOR:
            outcomes[name] = {
                "name": name,
                "from": current,
                "to": wanted or other.change.candidate,
                "outcome": "held",
                "reason": other.reason,
            }
        elif current is None:
            outcomes[name] = {"name": name, "from": None, "to": wanted, "outcome": "not installed"}
        elif wanted and compare_versions(current, wanted) < 0:
            outcomes[name] = {
                "name": name,
                "from": current,
                "to": wanted,
                "outcome": "held",
                "reason": "the archive offers no update to this version",
            }
        else:
            outcomes[name] = {"name": name, "from": current, "to": wanted, "outcome": "up to date"}
    return changes, still_held, outcomes, siblings


def transaction_problems(
    simulation: Simulation, planned: Collection[str], untouchable: Collection[str] = ()
) -> list[str]:
    """Why a simulated install of the ``planned`` packages goes beyond minor updates.

    A new package is allowed (a new dependency of a minor update, such as a kernel ABI
    package); a removal is not; nor is an upgrade outside the plan, unless it is minor
    and of a package that is not ``untouchable`` (on hold, excluded).
    """
    problems = [f"{name} would be removed" for name in simulation.removals]
    for change in simulation.upgrades:
        if change.name in planned:
            continue
        if change.installed is None:
            raise AssertionError(f"{change.name}: an upgrade without an installed version")
        if change.name in untouchable:
            problems.append(
                f"{change.name} is held but would be updated "
                f"({change.installed} -> {change.candidate})"
            )
        elif classify_update(change.installed, change.candidate) == MAJOR:
            problems.append(
                f"{change.name} would get a major update ({change.installed} -> {change.candidate})"
            )
    return problems


def unmet_dependencies(text: str) -> list[str]:
    """Why apt refuses an install, from its output: the lines under "unmet dependencies".

    `` libgssapi-krb5-2 : Depends: libkrb5-3 (= 1.21.3-5+deb13u2) but 1.21.3-5+deb13u1 is
    to be installed`` gives ``libgssapi-krb5-2: Depends: libkrb5-3 (= ...) but ...``; a
    continuation line (another dependency of the same package) is named after it too.
    """
    reasons: list[str] = []
    package = ""
    listing = False
    for line in text.splitlines():
        if "have unmet dependencies" in line:
            listing = True
            continue
        if not listing:
            continue
        if not line.strip() or line.startswith(("E:", "N:", "W:")):
            break
        name, colon, detail = line.partition(" : ")
        if colon:
            package = name.strip()
        else:
            detail = line
        reasons.append(f"{package}: {' '.join(detail.split())}")
    return reasons


def install_arguments(changes: Iterable[Change]) -> list[str]:
    """``name=version`` for each change: apt installs exactly the planned versions."""
    return [f"{change.name}={change.candidate}" for change in changes]


def parse_installed(text: str) -> dict[str, str]:
    """Installed versions from ``dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\\n'``.

    Only packages dpkg has fully installed (status ``ii``) count; several lines for one
    package (multi-arch) give the same version.
    """
    installed: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[2] == "ii":
            installed[_package(words[0])] = words[1]
    return installed


def replaced_files(maps: str) -> list[str]:
    """The code files a process maps that were replaced on disk, from ``/proc/PID/maps``.

    After an upgrade, a running process keeps the old library or binary: its mapping
    reads ``/usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)``. Data files, caches and
    shared memory are left out.
    """
    found: list[str] = []
    for line in maps.splitlines():
        if not line.endswith(_DELETED):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6:
            continue
        path = fields[5][: -len(_DELETED)]
        if path.startswith(_CODE_DIRS) and not path.startswith(_NOT_CODE) and path not in found:
            found.append(path)
    return found


def unit_of_cgroup(cgroup: str) -> str | None:
    """The systemd service a process belongs to, from ``/proc/PID/cgroup``.

    ``0::/system.slice/nginx.service`` gives ``nginx.service``; a nested cgroup gives
    its innermost service (``.../postgresql@15-main.service``). Processes outside any
    service (login sessions, PID 1) give None.
    """
    for line in cgroup.splitlines():
        hierarchy, _sep, path = line.partition(":")
        controllers, _sep, path = path.partition(":")
        if hierarchy != "0" and controllers != "name=systemd":
            continue
        services = [part for part in path.split("/") if part.endswith(".service")]
        return services[-1] if services else None
    return None


def parse_main_pids(show: str) -> dict[str, int]:
    """Each unit's main PID, from ``systemctl show -p Id -p MainPID UNIT...``.

    The output is one block of ``Key=value`` lines per unit, blocks separated by an
    empty line; a unit without a main process has ``MainPID=0``.
    """
    pids: dict[str, int] = {}
    for block in re.split(r"\n\s*\n", show):
        fields = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        if fields.get("Id") and fields.get("MainPID", "").isdigit():
            pids[fields["Id"]] = int(fields["MainPID"])
    return pids


def lock_holder(proc_locks: str, inode: int) -> int | None:
    """The PID holding a lock on the file with ``inode``, from ``/proc/locks``.

    Lines read ``1: POSIX  ADVISORY  WRITE 1234 08:01:1311 0 EOF``: the PID, then the
    device and inode of the locked file. A blocked waiter (``->``) is not a holder.
    """
    for line in proc_locks.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        file_id = fields[5].rsplit(":", 1)[-1]
        if file_id == str(inode) and fields[4].isdigit():
            return int(fields[4])
    return None


def newest_kernel(releases: Iterable[str]) -> str | None:
    """The newest of installed kernel releases (``6.1.0-40-amd64``), by dpkg's ordering."""
    valid = []
    for release in releases:
        try:
            compare_versions(release, release)
        except ValueError:
            continue
        valid.append(release)
    if not valid:
        return None
    return max(valid, key=cmp_to_key(compare_versions))
