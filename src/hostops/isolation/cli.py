"""Cut off a compromised server, and cap a server's bandwidth after notice.

``hostops isolate HOST --reason TEXT`` (contract §3.1.2, §3.1.4: a hacked server, or one
endangering the infrastructure, may be cut off from the Internet until corrected, the
client told by email) runs ``playbooks/isolate.yml``: a table of its own,
``inet hostops_isolate``, hooked before the regular firewall (``inet hostops``, which it
leaves untouched, present or not), lets in and out only ops' SSH (``firewall_ssh_sources``,
``--ssh-source`` and always the address the running Ansible connection comes from) and
the monitoring servers, and drops everything else, kept across reboots by a unit of its
own. ``hostops release HOST`` removes exactly that table and unit. Both are recorded (who,
when, why) in the state directory (``<state>/isolation/<host>/``) and on the server (the
local fact ``ansible_local.hostops_isolation``), and the customer's contact is emailed
(``--order FILE`` for the order's contact, or ``--contact EMAIL``; ``--no-send`` keeps the
``.eml`` only).

``hostops bandwidth notify HOST --mbps N`` records and emails the 72-hour notice of
§3.2.4; ``hostops bandwidth cap HOST [--at TIME]`` refuses (exit 1, nothing changed)
until 72 hours after it, then shapes the server's egress to the cap with tc (a token
bucket on the interface of its default route, or the one Ansible reaches it on),
re-applied at boot by a systemd unit; ``hostops bandwidth release HOST`` lifts it.

Every argument is checked, and the host resolved, before any host is touched (exit 2).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from hostops.core.errors import HostopsError, UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun
from hostops.core.settings import inventories_or_default, new_run_dir, operator, state_dir
from hostops.core.targets import Inventory, generated_inventory, lab_hosts
from hostops.isolation.records import (
    NOTICE_HOURS,
    append_event,
    bandwidth_folder,
    bandwidth_notice,
    deliver_notice,
    isolation_notice,
    paris_time,
)
from hostops.lab.nspawn import LabState, process_matches
from hostops.maintenance.notices import check_contacts, check_reason, now
from hostops.module_utils.maintenance_window import parse_at
from hostops.module_utils.order_rules import MAX_MBPS
from hostops.orders.order import load_order

TARGETS_GROUP = "hostops_isolate_targets"
MONITORING_GROUP = "monitoring_servers"
HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


# -- the commands ---------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    isolate = subparsers.add_parser(
        "isolate",
        help="cut a compromised server off: ops' SSH and monitoring only (§3.1.2, §3.1.4)",
    )
    _add_host(isolate)
    isolate.add_argument("--reason", metavar="TEXT", help="why (required; the client is told)")
    isolate.add_argument(
        "--ssh-source",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="an address or network ops' SSH comes from, besides firewall_ssh_sources and "
        "the running connection's (repeatable)",
    )
    isolate.add_argument(
        "--monitoring-source",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a monitoring address to keep, besides the group monitoring_servers (repeatable)",
    )
    _add_contact(isolate)
    isolate.set_defaults(func=cmd_isolate)

    release = subparsers.add_parser("release", help="lift 'hostops isolate' from a server")
    _add_host(release)
    release.add_argument("--reason", metavar="TEXT", help="why it is lifted (recorded)")
    _add_contact(release)
    release.set_defaults(func=cmd_release)

    bandwidth = subparsers.add_parser(
        "bandwidth", help="cap a server's bandwidth after 72 hours' notice (§3.2.4)"
    )
    verbs = bandwidth.add_subparsers(dest="bandwidth_command", metavar="VERB", required=True)
    notify = verbs.add_parser("notify", help="record and email the 72-hour notice of a cap")
    notify.add_argument("host", metavar="HOST", help="the server")
    notify.add_argument("--mbps", required=True, metavar="N", help="the cap, in Mbit/s")
    notify.add_argument("--at", metavar="ISO8601", help="when the notice is given (default: now)")
    _add_contact(notify)
    notify.set_defaults(func=cmd_notify)

    cap = verbs.add_parser("cap", help="shape the server's egress to the notified cap")
    _add_host(cap)
    cap.add_argument(
        "--at", metavar="ISO8601", help="the time to judge the notice by (default: now)"
    )
    cap.set_defaults(func=cmd_cap)

    lift = verbs.add_parser("release", help="lift the cap")
    _add_host(lift)
    lift.set_defaults(func=cmd_bandwidth_release)


def _add_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", metavar="HOST", help="the server (inventory or lab host name)")
    add_inventory_or_lab(
        parser, inventory_help="inventory holding the server (repeatable)", lab_help="a lab host"
    )
    parser.add_argument(
        "--monitoring-server",
        metavar="NAME",
        help="with --lab: the lab host that monitors the server (its access is kept)",
    )


def _add_contact(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--order", type=Path, metavar="FILE", help="the order: its contact")
    parser.add_argument(
        "--contact", action="append", default=[], metavar="EMAIL", help="the contact (repeatable)"
    )
    parser.add_argument(
        "--no-send", action="store_true", help="write the email (.eml), do not send it"
    )


# -- checks ---------------------------------------------------------------------------


def check_host(host: str) -> list[str]:
    if not HOST_NAME.fullmatch(host):
        return [f"HOST: {host!r} is not a host name (lowercase letters, digits, '.' and '-')"]
    return []


def check_addresses(values: list[str], option: str) -> tuple[list[str], list[str]]:
    good: list[str] = []
    problems = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            problems.append(f"{option}: {value!r} is not an IP address or network")
            continue
        if network.prefixlen == 0:
            problems.append(f"{option}: {value!r} is everyone; name ops' own addresses")
            continue
        good.append(str(network.network_address if _single(network) else network))
    return good, problems


def _single(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return network.prefixlen == network.max_prefixlen


def check_mbps(value: str) -> tuple[int | None, list[str]]:
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_MBPS:
        return None, [f"--mbps: {value!r} is not a whole number of Mbit/s in 1..{MAX_MBPS}"]
    return int(value), []


def check_at(value: str | None) -> tuple[datetime | None, list[str]]:
    if value is None:
        return now(), []
    try:
        return parse_at(value), []
    except ValueError as err:
        return None, [f"--at: {err}"]


def contacts_of(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The addresses to write to: --contact, and the contact of --order."""
    problems = check_contacts(args.contact)
    contacts = list(args.contact)
    if args.order is not None:
        order = load_order(args.order)  # UsageError naming the file and field
        if order.customer.contact is not None:
            contacts.append(order.customer.contact.email)
    if not contacts and not problems:
        problems.append("--contact: required (or --order FILE): the customer contact to write to")
    return list(dict.fromkeys(contacts)), problems


# -- where the host is ------------------------------------------------------------------


@dataclass
class Target:
    host: str
    inventories: list[Path]
    hosts: dict[str, dict[str, Any]]  # generated inventory: group -> hosts -> vars
    group_vars: dict[str, Any] = field(default_factory=dict)
    monitoring: list[str] = field(default_factory=list)
    limit: str | None = None

    def inventory(self) -> dict[str, Any]:
        return generated_inventory(self.hosts, self.group_vars)


def resolve(args: argparse.Namespace) -> Target:
    """The server (and the monitoring servers' addresses), or UsageError."""
    if args.lab:
        return _resolve_lab(args.host, args.monitoring_server)
    if args.monitoring_server:
        raise UsageError(
            f"--monitoring-server: {args.monitoring_server!r} is for --lab; an inventory's "
            f"group {MONITORING_GROUP} names the monitoring servers"
        )
    return _resolve_inventory(args.host, args.inventory)


def _resolve_lab(host: str, server: str | None) -> Target:

    state = LabState.load(_lab_state_file())
    name = state.host_name(host)
    names = [name] + ([state.host_name(server)] if server else [])
    problems = []
    for given, lab_name in zip([host, server], names, strict=False):
        option = "HOST" if given == host else "--monitoring-server"
        entry = state.hosts.get(lab_name)
        if entry is None or not process_matches(entry.pid, entry.netns):
            problems.append(f"{option}: no running lab host {given!r} (see 'hostops lab status')")
    if problems:
        raise UsageError(problems)
    resolved, group_vars = lab_hosts(names, None)
    monitoring = [resolved[names[1]]["ansible_host"]] if server else []
    return Target(
        host=host,
        inventories=[],
        hosts={TARGETS_GROUP: {host: resolved[name]}},
        group_vars=group_vars,
        monitoring=monitoring,
    )


def _lab_state_file() -> Path:
    from hostops.lab.nspawn import Lab  # noqa: PLC0415

    return Lab().paths.state_file


def _resolve_inventory(host: str, given: list[Path]) -> Target:
    inventories = inventories_or_default(given)
    inventory = Inventory.open(inventories)
    if inventory.host(host) is None:
        raise UsageError(f"HOST: {host!r} is in none of the inventories")
    problems: list[str] = []
    monitoring = []
    for member in inventory.group_hosts(MONITORING_GROUP):
        address = str(member.vars.get("ansible_host", member.name))
        try:
            monitoring.append(str(ipaddress.ip_address(address)))
        except ValueError:
            problems.append(
                f"{MONITORING_GROUP}: {member.name!r} has no IP address as ansible_host "
                f"({address!r}); give --monitoring-source ADDRESS"
            )
    if problems:
        raise UsageError(problems)
    return Target(
        host=host,
        inventories=inventories,
        hosts={TARGETS_GROUP: {host: {}}},
        monitoring=monitoring,
        limit=f"localhost,{host}",
    )


# -- running -----------------------------------------------------------------------------


def run_playbook(
    target: Target, playbook: str, extravars: dict[str, Any], folder: Path, verb: str
) -> tuple[bool, Path]:
    run_dir = new_run_dir(*folder.relative_to(state_dir()).parts, "runs", kind=verb, moment=now())
    generated = run_dir / "inventory.yml"
    generated.write_text(yaml.safe_dump(target.inventory(), sort_keys=False))
    result = PlaybookRun(
        playbook=playbook,
        inventory=[*target.inventories, generated],
        run_dir=run_dir / "runner",
        extravars={"hostops_targets": TARGETS_GROUP, **extravars},
        limit=target.limit,
    ).execute()
    return result.report(sys.stdout, f"{verb} {target.host}", run_dir), run_dir


def cmd_isolate(args: argparse.Namespace) -> int:
    return _isolation(args, isolate=True)


def cmd_release(args: argparse.Namespace) -> int:
    return _isolation(args, isolate=False)


def _isolation(args: argparse.Namespace, *, isolate: bool) -> int:
    verb = "isolate" if isolate else "release"
    problems = check_host(args.host)
    reason, bad = check_reason(args.reason, "--reason", required=isolate)
    problems += bad
    ssh, bad = check_addresses(getattr(args, "ssh_source", []), "--ssh-source")
    problems += bad
    extra_mon, bad = check_addresses(getattr(args, "monitoring_source", []), "--monitoring-source")
    problems += bad
    contacts, bad = contacts_of(args)
    problems += bad
    if problems:
        raise UsageError(problems)
    target = resolve(args)
    moment = now()
    record = {"action": verb, "by": operator(), "at": paris_time(moment), "reason": reason}
    folder = state_dir() / "isolation" / args.host
    print(f"{verb} {args.host}: {reason or ''}".rstrip(": "))
    ok, run_dir = run_playbook(
        target,
        "isolate.yml",
        {
            "hostops_isolate_state": "isolated" if isolate else "released",
            "hostops_isolate_record": record,
            "hostops_isolate_ssh_sources": ssh,
            "hostops_isolate_monitoring_sources": list(
                dict.fromkeys(target.monitoring + extra_mon)
            ),
        },
        folder,
        verb,
    )
    event = {**record, "host": args.host, "ok": ok, "run": str(run_dir)}
    if not ok:
        append_event(folder, event)
        return 1
    notice = isolation_notice(contacts, args.host, moment, reason, isolate=isolate)
    delivery = deliver_notice(notice, run_dir / f"{verb}.eml", args.no_send)
    event["notice"] = delivery
    append_event(folder, event)
    (folder / "current.json").write_text(
        json.dumps({"isolated": isolate, **record}, indent=2, ensure_ascii=False) + "\n"
    )
    done = (
        "isolated: only ops' SSH and the monitoring get in or out"
        if isolate
        else "released: the isolation table is gone, the regular rules are as before"
    )
    print(f"{verb} {args.host}: {done}")
    print(f"notice: {delivery['describe']}")
    return 1 if delivery.get("error") else 0


# -- bandwidth ----------------------------------------------------------------------------


def cmd_notify(args: argparse.Namespace) -> int:
    problems = check_host(args.host)
    mbps, bad = check_mbps(args.mbps)
    problems += bad
    at, bad = check_at(args.at)
    problems += bad
    contacts, bad = contacts_of(args)
    problems += bad
    if problems:
        raise UsageError(problems)
    assert mbps is not None and at is not None
    folder = bandwidth_folder(args.host)
    allowed = at + timedelta(hours=NOTICE_HOURS)
    notice = bandwidth_notice(contacts, args.host, mbps, allowed)
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    delivery = deliver_notice(notice, folder / "notices" / f"{stamp}.eml", args.no_send)
    record = {
        "host": args.host,
        "mbps": mbps,
        "notified_at": at.isoformat(),
        "cap_allowed_from": allowed.isoformat(),
        "by": operator(),
        "notice": delivery,
    }
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "notice.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    append_event(folder, {"action": "notify", **record})
    print(f"bandwidth notify {args.host}: cap of {mbps} Mbit/s from {paris_time(allowed)}")
    print(f"notice: {delivery['describe']}")
    return 1 if delivery.get("error") else 0


def cmd_cap(args: argparse.Namespace) -> int:
    problems = check_host(args.host)
    at, bad = check_at(args.at)
    problems += bad
    if problems:
        raise UsageError(problems)
    assert at is not None
    target = resolve(args)
    folder = bandwidth_folder(args.host)
    notice_file = folder / "notice.json"
    if not notice_file.exists():
        raise HostopsError(
            f"bandwidth cap {args.host}: refused, no notice recorded "
            f"(run 'hostops bandwidth notify {args.host} --mbps N' first); nothing changed"
        )
    notice = json.loads(notice_file.read_text())
    allowed = datetime.fromisoformat(notice["cap_allowed_from"])
    notified = datetime.fromisoformat(notice["notified_at"])
    if at < allowed:
        raise HostopsError(
            f"bandwidth cap {args.host}: refused, the notice of {paris_time(notified)} "
            f"allows a cap from {paris_time(allowed)} ({NOTICE_HOURS} hours, contract §3.2.4); "
            "nothing changed"
        )
    mbps = int(notice["mbps"])
    print(f"bandwidth cap {args.host}: egress shaped to {mbps} Mbit/s")
    ok, run_dir = run_playbook(
        target,
        "bandwidth.yml",
        {"hostops_bandwidth_state": "capped", "hostops_bandwidth_mbps": mbps},
        folder,
        "cap",
    )
    append_event(
        folder,
        {
            "action": "cap",
            "mbps": mbps,
            "by": operator(),
            "at": paris_time(now()),
            "ok": ok,
            "run": str(run_dir),
        },
    )
    return 0 if ok else 1


def cmd_bandwidth_release(args: argparse.Namespace) -> int:
    problems = check_host(args.host)
    if problems:
        raise UsageError(problems)
    target = resolve(args)
    folder = bandwidth_folder(args.host)
    print(f"bandwidth release {args.host}")
    ok, run_dir = run_playbook(
        target, "bandwidth.yml", {"hostops_bandwidth_state": "released"}, folder, "release"
    )
    append_event(
        folder,
        {
            "action": "release",
            "by": operator(),
            "at": paris_time(now()),
            "ok": ok,
            "run": str(run_dir),
        },
    )
    return 0 if ok else 1
