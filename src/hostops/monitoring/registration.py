"""Registering a server with monitoring, or deregistering it: the plan (the server's and the
monitoring server's entries in a generated inventory, the order's variables) checked and
resolved before any host is touched, then playbooks/monitor-register.yml or
monitor-deregister.yml run through ansible-runner."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from hostops.core.errors import UsageError
from hostops.core.runner import PlaybookRun
from hostops.core.settings import new_run_dir, settings
from hostops.core.targets import Inventory, generated_inventory, inventory_sources, lab_hosts
from hostops.lab.nspawn import order_host_prefix
from hostops.orders.order import Order

MONITORING_GROUP = "monitoring_servers"
SERVERS_GROUP = "hostops_monitor_targets"
# A server's name as the registry stores it: a file name and a label value.
SERVER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


@dataclass
class Plan:
    """One run of a monitoring playbook."""

    verb: str
    host: str
    playbook: str
    inventories: list[Path]
    hosts: dict[str, dict[str, Any]]  # generated inventory: group -> hosts -> host vars
    group_vars: dict[str, Any] = field(default_factory=dict)
    extravars: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None

    def inventory(self) -> dict[str, Any]:
        return generated_inventory(self.hosts, self.group_vars)


def plan_register(
    order: Order, host: str, *, inventories: list[Path], lab: bool, server: str | None
) -> Plan:
    problems: list[str] = []
    if order.managed_level == "none":
        problems.append(
            f"--order: order {order.id} has managed level 'none', which has no monitoring"
        )
    names = [s.hostname for s in order.servers]
    if host not in names:
        problems.append(f"HOST: {host!r} is not a server of order {order.id} ({', '.join(names)})")
    if lab and not server:
        problems.append("--server: required with --lab (the lab host that runs monitoring)")
    if problems:
        raise UsageError(problems)
    index = names.index(host)
    address = order.servers[index].address
    if lab:
        assert server is not None  # checked above
        lab_host = f"{order_host_prefix(order.id)}{index + 1}"
        resolved, group_vars = lab_hosts([lab_host, server], server)
        target = {**resolved[lab_host], "hostops_fqdn": host}
        monitoring = {server: resolved[server]}
        limit = None
    else:
        group_vars = {}
        target, monitoring, limit = resolve_inventory(inventories, host, address, server)
    return Plan(
        verb="register",
        host=host,
        playbook="monitor-register.yml",
        inventories=[] if lab else inventories,
        hosts={SERVERS_GROUP: {host: target}, MONITORING_GROUP: monitoring},
        group_vars=group_vars,
        # an explicit registration: a server deregistered earlier is watched again
        extravars={
            **order.to_vars(),
            "hostops_targets": SERVERS_GROUP,
            "hostops_monitor_register_deregistered": True,
        },
        limit=limit,
    )


def plan_deregister(host: str, *, inventories: list[Path], lab: bool, server: str | None) -> Plan:
    if not SERVER_NAME.fullmatch(host):
        raise UsageError(
            f"HOST: {host!r} is not a server name (lowercase letters, digits, '.' and '-')"
        )
    if lab:
        if not server:
            raise UsageError("--server: required with --lab (the lab host that runs monitoring)")
        resolved, group_vars = lab_hosts([server], server)
        monitoring = {server: resolved[server]}
        limit = None
    else:
        group_vars = {}
        _, monitoring, limit = resolve_inventory(inventories, None, None, server)
    return Plan(
        verb="deregister",
        host=host,
        playbook="monitor-deregister.yml",
        inventories=[] if lab else inventories,
        hosts={MONITORING_GROUP: monitoring},
        group_vars=group_vars,
        extravars={"hostops_monitor_servers": [host]},
        limit=limit,
    )


def monitoring_group(
    *, lab: bool, inventories: list[Path], server: str | None, option: str = "--monitoring-server"
) -> dict[str, dict[str, Any]]:
    """The hosts to add to the group monitoring_servers of a generated inventory (for
    'hostops order apply'): the lab host or inventory host SERVER, or none when the
    inventories' own group serves. UsageError when there is no monitoring server."""
    if lab:
        if not server:
            raise UsageError(f"{option}: required with --lab (the lab host that runs monitoring)")
        resolved, _ = lab_hosts([server], server, option)
        return resolved
    server = server or settings().monitoring_server
    _, monitoring, _ = resolve_inventory(inventories, None, None, server, option)
    return monitoring


def resolve_inventory(
    inventories: list[Path],
    host: str | None,
    address: str | None,
    server: str | None,
    option: str = "--server",
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The server's and the monitoring server's entries in the generated inventory, and
    the run's limit (the chosen monitoring server only, when OPTION names one)."""
    inventories = inventory_sources(lab=False, inventories=inventories)
    problems: list[str] = []
    inventory = Inventory.open(inventories)

    def known(name: str) -> bool:
        return inventory.host(name) is not None

    target: dict[str, Any] = {}
    if host is not None:
        if not known(host) and address is None:
            problems.append(
                f"HOST: {host!r} is in none of the inventories and the order gives no address"
            )
        target = {"hostops_fqdn": host}
        if address:
            target["ansible_host"] = address
    monitoring: dict[str, Any] = {}
    limit = None
    if server:
        if not known(server):
            problems.append(f"{option}: {server!r} is in none of the inventories")
        monitoring = {server: {}}
        limit = ",".join(["localhost", server, *([host] if host else [])])
    elif not inventory.group_hosts(MONITORING_GROUP):
        problems.append(
            f"{option}: required: the inventories have no host in the group {MONITORING_GROUP}"
        )
    if problems:
        raise UsageError(problems)
    return target, monitoring, limit


def execute(plan: Plan, *, check: bool, out: TextIO = sys.stdout) -> int:

    run_dir = new_run_dir("monitor", plan.host, "runs", kind=plan.verb)
    generated = run_dir / "monitor-inventory.yml"
    generated.write_text(yaml.safe_dump(plan.inventory(), sort_keys=False))
    mode = "check mode, nothing is changed" if check else "applying"
    print(f"monitor {plan.verb} {plan.host} ({mode})", file=out)
    result = PlaybookRun(
        playbook=plan.playbook,
        inventory=[*plan.inventories, generated],
        run_dir=run_dir / "runner",
        extravars=plan.extravars,
        limit=plan.limit,
        check=check,
        diff=check,
        out=out,
    ).execute()
    if not result.report(out, f"monitor {plan.verb} {plan.host}", run_dir):
        return 1
    if check:
        print(
            f"monitor {plan.verb} {plan.host}: check mode predicts {result.changed} change(s)",
            file=out,
        )
        return 0
    done = "registered" if plan.verb == "register" else "deregistered (it keeps running, unwatched)"
    print(f"monitor {plan.verb} {plan.host}: {done}; {result.changed} change(s)", file=out)
    return 0
