"""Provision an order: inventory for its servers, the provision playbook, the delivery note.

``apply_order`` is what ``hostops order apply`` runs. The order was validated before any
of this (``hostops.orders.order.accept_order``); here the servers are resolved to hosts (lab
hosts booted on demand, or an operator's inventory), ``playbooks/provision.yml`` runs
through ansible-runner with the order as extra variables, and on success the delivery
note (bon de livraison, contract §3.1.1) is written as Markdown and JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import yaml

from hostops.core.errors import HostopsError, UsageError
from hostops.core.runner import PlaybookRun, RunResult
from hostops.core.settings import inventories_or_default, new_run_dir, state_dir
from hostops.core.targets import Inventory
from hostops.lab.nspawn import (
    HOST_NAME_RE,
    Lab,
    LabState,
    connection_vars,
    order_host_prefix,
    process_matches,
)
from hostops.maintenance import notices
from hostops.monitoring.registration import MONITORING_GROUP, monitoring_group
from hostops.orders import fleet
from hostops.orders.order import Order

PARIS = ZoneInfo("Europe/Paris")
ORDER_GROUP = "hostops_order"
BACKUP_GROUP = "backup_servers"
RELEASE_OF_OS = {"debian13": "trixie", "debian12": "bookworm"}
# The lab's monitoring server when 'order apply --lab' is given none: one for every lab
# order, as ops have one for the fleet.
LAB_MONITORING_SERVER = "monitoring1"


def backup_key_store() -> Path:
    """The controller's escrow of every server's backup passwords (docs/backups.md)."""
    return state_dir().resolve() / "backup-keys"


@dataclass(frozen=True)
class Target:
    """How one of the order's servers is reached."""

    hostname: str
    address: str | None
    connection: Mapping[str, Any]


def lab_targets(order: Order) -> tuple[list[Target], dict[str, Any], dict[str, Any]]:
    """Map the order's servers onto lab hosts, booting them if needed; with backups, a
    lab backup host too (the group backup_servers of the run's inventory)."""
    release = RELEASE_OF_OS[order.os]
    prefix = order_host_prefix(order.id)
    lab = Lab()
    hosts = lab.up(len(order.servers), release, prefix)
    group_vars = lab_group_vars(lab)
    targets = [
        Target(server.hostname, host.address, {"ansible_host": host.address})
        for server, host in zip(order.servers, hosts, strict=True)
    ]
    # '--lab --host web01.martin.example' finds the lab host by the order's name
    for server, host in zip(order.servers, hosts, strict=True):
        lab.alias(host.name, server.hostname)
    backup_hosts: dict[str, Any] = {}
    if order.backups.enabled:
        # the backup host runs Debian 13 whatever the order's servers run: restic's REST
        # server is packaged from Debian 13 on
        (backup,) = lab.up(1, "trixie", f"{prefix}backup")
        backup_hosts[backup.name] = {"ansible_host": backup.address}
    return targets, group_vars, backup_hosts


def lab_group_vars(lab: Lab) -> dict[str, Any]:
    return connection_vars(LabState.load(lab.paths.state_file), lab.paths.ssh_key)


def lab_monitoring_server(name: str, out: TextIO) -> dict[str, Any]:
    """The lab host NAME as the order's monitoring server. When it does not run yet it
    is booted (Debian 13) and set up with playbooks/monitoring-server.yml, as ops have a
    monitoring server before any order; a running one is used as it is, unless its
    set-up by an earlier apply did not finish (then it is set up again)."""
    lab = Lab()
    pending = lab.paths.state_dir / "monitoring-set-up-pending" / name
    host = LabState.load(lab.paths.state_file).hosts.get(name)
    if host is not None and process_matches(host.pid, host.netns) and not pending.exists():
        return {name: {"ansible_host": host.address}}
    print(
        f"lab: setting up {name} as the lab's monitoring server (lab infrastructure, "
        "not part of the order; also in check mode)",
        file=out,
    )
    (booted,) = lab.up(1, "trixie", names=[name])
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.touch()
    run_dir = new_run_dir("lab-monitoring", name)
    inventory = run_dir / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        MONITORING_GROUP: {
                            "hosts": {name: {"ansible_host": booted.address}},
                            "vars": lab_group_vars(lab),
                        }
                    }
                }
            },
            sort_keys=False,
        )
    )
    result = PlaybookRun(
        playbook="monitoring-server.yml",
        inventory=[inventory],
        run_dir=run_dir / "runner",
        quiet=True,
        out=out,
    ).execute()
    if not result.ok:
        raise HostopsError(
            "\n".join(
                [
                    *result.failure_lines,
                    f"lab: setting up the monitoring server {name} failed; the order's "
                    f"servers were not touched; re-run the same command (artifacts: {run_dir})",
                ]
            )
        )
    pending.unlink()
    print(f"lab: {name} runs Prometheus, Alertmanager and the blackbox exporter", file=out)
    return {name: {"ansible_host": booted.address}}


def inventory_targets(order: Order, inventories: list[Path]) -> list[Target]:
    """Resolve the order's servers in the operator's inventory, before touching any host."""
    inventory = Inventory.open(inventories)
    problems: list[str] = []
    targets = []
    for index, server in enumerate(order.servers):
        host = inventory.host(server.hostname)
        if host is None and server.address is None:
            problems.append(
                f"servers[{index}].hostname: {server.hostname!r} is in none of the inventories "
                "and the order gives no address"
            )
            continue
        connection: dict[str, Any] = {}
        if server.address:
            connection["ansible_host"] = server.address
        targets.append(Target(server.hostname, server.address, connection))
    if problems:
        raise UsageError(problems)
    return targets


def run_inventory(
    targets: list[Target],
    group_vars: Mapping[str, Any],
    monitoring: Mapping[str, Any] | None = None,
    backup_hosts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    hosts = {t.hostname: {**t.connection, "hostops_fqdn": t.hostname} for t in targets}
    children: dict[str, Any] = {ORDER_GROUP: {"hosts": hosts, "vars": dict(group_vars)}}
    if monitoring:
        children[MONITORING_GROUP] = {"hosts": dict(monitoring), "vars": dict(group_vars)}
    if backup_hosts:
        children[BACKUP_GROUP] = {"hosts": dict(backup_hosts), "vars": dict(group_vars)}
    return {"all": {"children": children}}


def apply_order(
    order: Order,
    *,
    lab: bool,
    inventories: list[Path],
    check: bool = False,
    limit: str | None = None,
    monitoring_server: str | None = None,
    send: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    # Monitored levels need a monitoring server: found (or refused) before any host is
    # touched.
    if not lab:
        inventories = inventories_or_default(inventories)
    if limit and limit not in {s.hostname for s in order.servers}:
        raise UsageError(f"--limit: {limit!r} is not one of the order's servers")
    if lab and monitoring_server is not None and not HOST_NAME_RE.match(monitoring_server):
        raise UsageError(
            f"--monitoring-server: {monitoring_server!r} is not a lab host name "
            f"({HOST_NAME_RE.pattern})"
        )
    monitoring: dict[str, Any] = {}
    if order.managed_level != "none":
        if lab:
            monitoring = lab_monitoring_server(monitoring_server or LAB_MONITORING_SERVER, out)
        else:
            monitoring = monitoring_group(
                lab=lab, inventories=inventories, server=monitoring_server
            )
    backup_hosts: dict[str, Any] = {}
    if lab:
        targets, group_vars, backup_hosts = lab_targets(order)
        inventory_paths: list[Path] = []
    else:
        if not inventories:
            raise UsageError("--inventory: required unless --lab is given")
        targets, group_vars = inventory_targets(order, inventories), {}
        inventory_paths = inventories
    run_dir = new_run_dir("orders", order.id, "runs")
    generated = run_dir / "order-inventory.yml"
    inventory = run_inventory(targets, group_vars, monitoring, backup_hosts)
    generated.touch(mode=0o600)
    generated.write_text(yaml.safe_dump(inventory, sort_keys=False))
    # Each server's backup passwords are made by the backup role into this key store
    # (escrow, root only), where 'hostops backup restore --from-host' finds them.
    extravars = {
        **order.to_vars(),
        "hostops_targets": ORDER_GROUP,
        "backup_key_store": str(backup_key_store()),
    }
    if not check:
        fleet.write_order(state_dir() / "orders" / order.id, order.to_vars())
    started = datetime.now(PARIS).isoformat(timespec="seconds")
    mode = "check mode, nothing is changed" if check else "applying"
    print(
        f"order {order.id}: {len(targets)} server(s), level {order.managed_level} ({mode})",
        file=out,
    )
    run = PlaybookRun(
        playbook="provision.yml",
        inventory=[*inventory_paths, generated],
        run_dir=run_dir / "runner",
        extravars=extravars,
        limit=f"{limit},{MONITORING_GROUP},{BACKUP_GROUP},localhost" if limit else None,
        check=check,
        diff=check,
        out=out,
    )
    result = run.execute()
    fleet.write_run(
        run_dir,
        {
            "order": order.id,
            "mode": "check" if check else "apply",
            "status": "successful" if result.ok else "failed",
            "changed": result.changed,
            "hosts": result.hosts,
            "limit": limit,
            "lab": lab,
            "started_at": started,
            "finished_at": datetime.now(PARIS).isoformat(timespec="seconds"),
        },
    )
    if not result.report(out, f"order {order.id}", run_dir):
        return 1
    for name in result.artifacts.get("hostops_monitor_left_out") or []:
        print(
            f"order {order.id}: {name} was deregistered from monitoring and stays out "
            "('hostops monitor register' watches it again)",
            file=out,
        )
    if check:
        print(f"order {order.id}: check mode predicts {result.changed} change(s)", file=out)
        return 0
    note = write_delivery_note(order, targets, result, run_dir)
    print(f"order {order.id}: {result.changed} change(s); delivery note: {note}", file=out)
    print("", file=out)
    print(note.read_text(), file=out)
    if send:
        print(f"order {order.id}: delivery note {send_delivery_note(order, note)}", file=out)
    return 0


def send_delivery_note(order: Order, note: Path) -> str:
    """Email the delivery note (bon de livraison, §3.1.1: the delivery date is the date it
    is sent) to the customer's contact, once per content: a re-apply that changes nothing
    in the note does not send it again; a note not sent (no relay, a refusal) is tried
    again at the next apply. Returns what became of it, for the operator."""
    contact = order.customer.contact
    if contact is None:
        return "not sent: the order names no contact"
    text = note.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    record_path = note.with_name("delivery-note-sent.json")
    record: dict[str, Any] = {}
    if record_path.exists():
        record = json.loads(record_path.read_text())
    if record.get("sha256") == digest and record.get("to") == [contact.email]:
        return f"already sent to {contact.email} on {record.get('sent_at')} (unchanged)"
    notice = notices.Notice(
        to=(contact.email,),
        subject=f"Bon de livraison : commande {order.id}",
        body="Bonjour,\n\nVoici le bon de livraison de votre commande "
        f"{order.id} (conditions particulières, article 3.1.1).\n\n{text}\n"
        "L'équipe infogérance Alixans\n",
        attachments=(
            (
                "delivery-note.json",
                "application/json",
                note.with_name("delivery-note.json").read_bytes(),
            ),
        ),
    )
    delivery = notices.deliver(notice, note.with_name("delivery-note.eml"))
    if delivery.sent:
        sent_at = datetime.now(PARIS).isoformat(timespec="seconds")
        record = {"sha256": digest, "to": [contact.email], "sent_at": sent_at}
        record_path.write_text(json.dumps(record, indent=2) + "\n")
    return delivery.describe()


def write_delivery_note(
    order: Order, targets: list[Target], result: RunResult, run_dir: Path
) -> Path:
    """Write the note as JSON and Markdown; the entry into service date is kept from the
    first delivery (a re-apply does not deliver again).

    What it lists comes from what the run recorded, not from the order's intent: each
    server's software, DNS records and backup schedule from its local facts (the last
    play of provision.yml, ``hostops_delivery``), the probes from what the monitoring
    servers registered (``hostops_monitor_registered``)."""
    folder = state_dir() / "orders" / order.id
    json_path = folder / "delivery-note.json"
    previous: dict[str, Any] = {}
    if json_path.exists():
        previous = json.loads(json_path.read_text())
    now = datetime.now(PARIS)
    delivered = result.artifacts.get("hostops_delivery", {})
    registered = dict(result.artifacts.get("hostops_monitor_registered") or {})
    # A server deregistered since its delivery stays out of monitoring (the contract's
    # isolation); its note keeps what was delivered rather than changing (and being sent
    # again) on every re-apply.
    before = {s.get("hostname"): s.get("monitoring") for s in previous.get("servers") or []}
    for name in result.artifacts.get("hostops_monitor_left_out") or []:
        if name not in registered and before.get(name):
            registered[name] = before[name]
    servers = []
    for target in targets:
        facts = delivered.get(target.hostname, {})
        servers.append(
            {
                "hostname": target.hostname,
                "address": target.address or facts.get("address") or None,
                "os": facts.get("os", ""),
                "software": dict(sorted(facts.get("software", {}).items())),
                "dns_records": dkim_records(facts.get("mail_dkim") or {}),
                "backups": backup_schedule(facts.get("backup") or {}),
                "monitoring": registration(registered.get(target.hostname)),
            }
        )
    schedules = [s["backups"] for s in servers if s["backups"]]
    probes = [s["monitoring"] for s in servers if s["monitoring"]]
    note = {
        "order": order.id,
        "customer": order.customer.name,
        "service": order.service,
        "managed_level": order.managed_level,
        "servers": servers,
        # the order's schedule as the servers recorded it (the first server's when
        # they differ: each server's is in its entry); None when no server has backups
        "backups": schedules[0] if schedules else None,
        "monitoring": {
            kind: [check for entry in probes for check in entry[kind]]
            for kind in ("http_checks", "tcp_checks", "tls_checks")
        },
        "availability_target": "99.9% (at most 43 min 12 s of outage per month)",
        "entry_into_service": previous.get("entry_into_service", now.date().isoformat()),
        "delivered_at": previous.get("delivered_at", now.isoformat(timespec="seconds")),
        "last_applied_at": now.isoformat(timespec="seconds"),
        "last_run": str(run_dir),
    }
    folder.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(note, indent=2, ensure_ascii=False) + "\n")
    md_path = folder / "delivery-note.md"
    md_path.write_text(render_markdown(note))
    return md_path


def backup_schedule(fact: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schedule the backup role recorded on a server (local fact ``backup``), or None
    when it has none (no backups, or disabled)."""
    if not fact or fact.get("enabled") is not True:
        return None
    schedule = {
        "schedule": f"daily at {fact.get('time', '?')} {fact.get('timezone', 'Europe/Paris')}",
        "retention_days": int(fact.get("retention_days") or 0),
    }
    if fact.get("paths"):
        schedule["paths"] = [str(path) for path in fact["paths"]]
    return schedule


def registration(entry: object) -> dict[str, list[str]] | None:
    """What a monitoring server registered for a server (its probes and checks), or None."""
    if not isinstance(entry, Mapping):
        return None
    return {
        kind: [str(item) for item in entry.get(kind) or []]
        for kind in ("probes", "http_checks", "tcp_checks", "tls_checks")
    }


def dkim_records(fact: Mapping[str, Any]) -> list[dict[str, str]]:
    """The DKIM TXT records to publish, from the mail role's local fact ``mail_dkim``
    (``{selector, records: {domain: value}}``)."""
    selector = str(fact.get("selector", ""))
    records = fact.get("records") or {}
    return [
        {"name": f"{selector}._domainkey.{domain}", "type": "TXT", "value": str(value)}
        for domain, value in sorted(records.items())
        if selector and value
    ]


PROBE_NAMES = {
    "icmp": "ping",
    "node": "system metrics",
    "http": "HTTP checks",
    "tcp": "TCP checks",
    "tls": "certificate expiry",
}


def render_markdown(note: Mapping[str, Any]) -> str:
    lines = [
        f"# Delivery note (bon de livraison): order {note['order']}",
        "",
        f"- Customer: {note['customer']}",
        f"- Service: {note['service']}, managed level: {note['managed_level']}",
        f"- Date of entry into service: {note['entry_into_service']}",
        f"- Availability target: {note['availability_target']}",
        "",
        "## Servers",
        "",
        "| hostname | address | OS |",
        "|---|---|---|",
    ]
    for server in note["servers"]:
        lines.append(f"| {server['hostname']} | {server['address'] or '-'} | {server['os']} |")
    lines += ["", "## Installed software", ""]
    for server in note["servers"]:
        versions = ", ".join(f"{n} {v}" for n, v in server["software"].items()) or "-"
        lines.append(f"- {server['hostname']}: {versions}")
    records = [(s["hostname"], r) for s in note["servers"] for r in s.get("dns_records", [])]
    if records:
        lines += ["", "## DNS records to publish", ""]
        lines += ["DKIM keys of the mail domains, made on the server: publish each one.", ""]
        lines += [f'- {host}: `{r["name"]}. IN {r["type"]} "{r["value"]}"`' for host, r in records]
    lines += ["", "## Backups", ""]
    for server in note["servers"]:
        backups = server.get("backups")
        lines.append(
            f"- {server['hostname']}: {backups['schedule']}, kept {backups['retention_days']} days"
            + (f" (files: {', '.join(backups['paths'])})" if backups.get("paths") else "")
            if backups
            else f"- {server['hostname']}: none scheduled"
        )
    lines += ["", "## Monitoring", ""]
    for server in note["servers"]:
        watched = server.get("monitoring")
        if not watched:
            lines.append(f"- {server['hostname']}: not registered")
            continue
        checks = watched["http_checks"] + watched["tcp_checks"]
        checks += [f"{p} (certificate expiry)" for p in watched["tls_checks"]]
        lines.append(
            f"- {server['hostname']}: {', '.join(PROBE_NAMES.get(p, p) for p in watched['probes'])}"
            + (f"; checks: {', '.join(checks)}" if checks else "")
        )
    lines.append("")
    return "\n".join(lines)
