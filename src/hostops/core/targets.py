"""Where a command's hosts are: the lab or the inventories. Every command reads the
operator's inventories through :class:`Inventory` (Ansible's own parser, opened once), and
the commands that act on a named server resolve it with :func:`inventory_host`.

Every answer comes before any host is touched, and bad input is a :class:`UsageError`
(exit status 2) naming the option. A host is a host of the inventories: never Ansible's
implicit ``localhost`` (a request, a restore or an isolation "on localhost" would run on
the controller).
"""

from __future__ import annotations

import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostops.core.errors import UsageError
from hostops.core.settings import inventories_or_default
from hostops.module_utils.names import is_contact_address

CONTACT_VAR = "hostops_customer_email"  # the inventory variable naming a host's customer contacts


def generated_inventory(
    hosts: Mapping[str, Mapping[str, Any]], group_vars: Mapping[str, Any]
) -> dict[str, Any]:
    """The inventory a command writes for its run: group -> hosts -> host variables, and
    the variables of all its hosts."""
    children = {group: {"hosts": dict(members)} for group, members in hosts.items()}
    data: dict[str, Any] = {"all": {"children": children}}
    if group_vars:
        data["all"]["vars"] = dict(group_vars)
    return data


def inventory_sources(*, lab: bool, inventories: Sequence[Path]) -> list[Path]:
    """The inventories a run reads: the lab's (``--lab``), the ones given
    (``--inventory``), or the configured default."""
    if lab and inventories:
        raise UsageError("--inventory and --lab: give one of them, not both")
    if lab:
        from hostops.lab.nspawn import LabPaths  # noqa: PLC0415 - only the lab needs it

        path = LabPaths.default().inventory
        if not path.exists():
            raise UsageError(
                f"--lab: no lab inventory at {path} (boot hosts with 'hostops lab up')"
            )
        return [path]
    chosen = inventories_or_default(list(inventories))
    _check_sources(chosen, "--inventory")
    return chosen


def _check_sources(sources: Sequence[Path], option: str) -> None:
    """A UsageError naming OPTION when there is no inventory or one is missing."""
    if not sources:
        raise UsageError(f"{option}: required unless --lab is given")
    missing = [f"{option}: {p} does not exist" for p in sources if not p.exists()]
    if missing:
        raise UsageError(missing)
    unreadable = [problem for path in sources for problem in _not_plain(path, option)]
    if unreadable:
        raise UsageError(unreadable)


MAX_INVENTORY_FILE = 16 * 1024 * 1024
MAX_INVENTORY_ENTRIES = 10_000


def _not_plain(path: Path, option: str) -> list[str]:
    """What Ansible could not read, or would wait for or read forever: a FIFO, a device or
    a socket (the given path, or a file in the given directory), or a file too big for an
    inventory."""
    found = [path]
    if path.is_dir():
        for count, each in enumerate(path.rglob("*")):
            if count >= MAX_INVENTORY_ENTRIES:
                return [f"{option}: {path} holds too many files for an inventory"]
            found.append(each)
    problems = []
    for each in found:
        try:
            info = each.stat()
        except OSError as err:  # a dangling link in the directory
            problems.append(f"{option}: {each}: {err.strerror}")
            continue
        if stat.S_ISDIR(info.st_mode):
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{option}: {each} is not a regular file or a directory")
        elif info.st_size > MAX_INVENTORY_FILE:
            problems.append(f"{option}: {each} is too big for an inventory")
    return problems


@dataclass
class Inventory:
    """The operator's inventories, parsed once by Ansible's own inventory manager."""

    manager: Any
    loader: Any
    _variables: Any = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        sources: Sequence[Path],
        *,
        option: str = "--inventory",
        vault_secrets: list[tuple[str, Any]] | None = None,
    ) -> Inventory:
        """Parse *sources*; a UsageError naming OPTION when there is none or one is
        missing."""
        _check_sources(sources, option)
        from ansible.inventory.manager import InventoryManager  # noqa: PLC0415 - slow import
        from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415

        loader = DataLoader()
        if vault_secrets:
            loader.set_vault_secrets(vault_secrets)
        manager = InventoryManager(loader=loader, sources=[str(p) for p in sources])
        return cls(manager, loader)

    def host(self, name: str) -> Any | None:
        """The host NAME of the inventories, or None; never Ansible's implicit localhost
        (the controller)."""
        found = self.manager.get_host(name)
        if found is None or getattr(found, "implicit", False):
            return None
        return found

    def group_hosts(self, group: str) -> list[Any]:
        """The hosts of GROUP (none when the group is not there)."""
        found = self.manager.groups.get(group)
        return list(found.get_hosts()) if found else []

    def hosts(self, limit: str | None = None) -> list[Any]:
        """All the hosts, or those of Ansible's --limit PATTERN, by name."""
        if limit:
            self.manager.subset(limit)
        try:
            return sorted(self.manager.get_hosts("all"), key=lambda host: host.name)
        finally:
            if limit:
                self.manager.subset(None)

    def contacts(self, host: Any) -> tuple[list[str], list[str]]:
        """The customer contacts the inventory gives *host* (the variable
        ``hostops_customer_email``: one address or a list), and a problem line for each
        value that is not an email address."""
        value = self.host_vars(host).get(CONTACT_VAR)
        values = [value] if isinstance(value, str) else list(value or [])
        problems = [
            f"{host.name}: {CONTACT_VAR} {v!r} is not an email address"
            for v in values
            if not is_contact_address(str(v))
        ]
        return [str(v) for v in values], problems

    def host_vars(self, host: Any) -> dict[str, Any]:
        """The inventory's variables of *host* (host, groups, group_vars, host_vars)."""
        if self._variables is None:
            from ansible.vars.manager import VariableManager  # noqa: PLC0415 - slow import

            self._variables = VariableManager(loader=self.loader, inventory=self.manager)
        return dict(self._variables.get_vars(host=host))


def inventory_host(
    name: str,
    inventories: Sequence[Path],
    *,
    lab: bool,
    option: str = "--host",
    vault_secrets: list[tuple[str, Any]] | None = None,
) -> str:
    """The inventory name of the host NAME, which must be a host of *inventories* (a lab
    host also answers to the FQDN its order gave it); never the implicit localhost."""
    wanted = name
    if lab:
        from hostops.lab.nspawn import lab_host_name  # noqa: PLC0415 - only the lab needs it

        wanted = lab_host_name(name)
    host = Inventory.open(inventories, vault_secrets=vault_secrets).host(wanted)
    if host is None:
        where = (
            "the lab (see 'hostops lab status')"
            if lab
            else "the inventory (" + ", ".join(str(p) for p in inventories) + ")"
        )
        raise UsageError(f"{option}: {name!r} is not a host of {where}")
    return str(host.name)


def lab_hosts(
    names: list[str], server: str | None, option: str = "--server"
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Connection variables of running lab hosts NAMES, and the lab's group variables;
    UsageError naming each one not running. SERVER is the name OPTION gave (the
    monitoring server), the others are hosts given as HOST."""
    from hostops.lab.nspawn import Lab, LabState, connection_vars, process_matches  # noqa: PLC0415

    lab = Lab()
    state = LabState.load(lab.paths.state_file)
    problems = []
    resolved: dict[str, dict[str, Any]] = {}
    for name in names:
        host = state.hosts.get(name)
        what = option if name == server else "HOST"
        if host is None or not process_matches(host.pid, host.netns):
            hint = "" if name == server else " (run 'hostops order apply ORDER --lab' first)"
            problems.append(f"{what}: no running lab host {name!r}{hint}")
            continue
        resolved[name] = {"ansible_host": host.address}
    if problems:
        raise UsageError(problems)
    group_vars = connection_vars(state, lab.paths.ssh_key)
    return resolved, group_vars
