"""The hosts a patch run reaches (lab hosts or the inventories' hosts) and whom to tell:
the customers' contacts from the inventory and the order, the order's HTTP checks.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hostops.core.errors import UsageError
from hostops.core.settings import inventories_or_default
from hostops.core.targets import Inventory
from hostops.orders.order import load_order

LAB_GROUP = "hostops_patch"
CONTACT_VAR = "hostops_customer_email"


@dataclass
class Targets:
    """The hosts a run reaches, and what the inventory and the order say about them."""

    inventories: list[Path]
    hosts: list[str]
    contacts: dict[str, list[str]] = field(default_factory=dict)  # email -> hosts
    order_http_checks: dict[str, list[str]] = field(default_factory=dict)  # host -> URLs
    # for lab hosts: writes their inventory (connection settings) to the given path
    write_lab_inventory: Callable[[Path], None] | None = None


def resolve_targets(args: argparse.Namespace) -> Targets:
    """Find the hosts and their contacts before anything runs; UsageError on any problem."""
    lab, hosts = getattr(args, "lab", False), getattr(args, "host", [])
    if hosts and not lab:
        raise UsageError("--host: only with --lab (in an inventory, choose with --limit)")
    if lab and not hosts:
        raise UsageError("--host: required with --lab (the lab hosts to patch)")
    if lab:
        targets = lab_targets(hosts, args.limit, "--host")
    elif args.lab_host:
        targets = lab_targets(args.lab_host, args.limit, "--lab-host")
    else:
        targets = inventory_targets(inventories_or_default(args.inventory), args.limit)
    if not targets.hosts:
        where = f"--limit {args.limit!r}" if args.limit else "the inventory"
        raise UsageError(f"{where}: no host to patch")
    if args.order is not None:
        add_order(targets, args.order)
    return targets


def inventory_targets(inventories: list[Path], limit: str | None) -> Targets:
    inventory = Inventory.open(inventories)
    problems: list[str] = []
    chosen = inventory.hosts(limit)
    contacts: dict[str, list[str]] = {}
    for host in chosen:
        emails, bad = inventory.contacts(host)
        problems += bad
        for email in emails:
            contacts.setdefault(email, []).append(host.name)
    if problems:
        raise UsageError(problems)
    return Targets(list(inventories), [host.name for host in chosen], contacts)


def lab_targets(names: list[str], limit: str | None, option: str) -> Targets:
    from hostops.lab.nspawn import Lab, LabState, write_inventory  # noqa: PLC0415 - lab only

    lab = Lab()
    state = LabState.load(lab.paths.state_file)
    names = [state.host_name(name) for name in names]
    problems = [
        f"{option}: {name!r} is not a lab host (see 'hostops lab status')"
        for name in names
        if name not in state.hosts
    ]
    if problems:
        raise UsageError(problems)
    wanted = {part.strip() for part in re.split(r"[,:]", limit or "") if part.strip()}
    chosen = [state.hosts[name] for name in sorted(set(names)) if not wanted or name in wanted]

    def write(path: Path) -> None:
        write_inventory(path, chosen, state, lab.paths.ssh_key, LAB_GROUP)

    return Targets([], [host.name for host in chosen], write_lab_inventory=write)


def add_order(targets: Targets, path: Path) -> None:
    order = load_order(path)
    servers = [server.hostname for server in order.servers if server.hostname in targets.hosts]
    if not servers:
        raise UsageError(
            f"--order: none of the servers of order {order.id} "
            f"({', '.join(s.hostname for s in order.servers)}) is among the hosts to patch"
        )
    checks = list(order.monitoring.http_checks)
    if checks:
        targets.order_http_checks = {server: checks for server in servers}
    contact = order.customer.contact
    if contact is not None:
        hosts = targets.contacts.setdefault(contact.email, [])
        hosts += [server for server in servers if server not in hosts]
