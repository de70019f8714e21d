"""``hostops patch plan | run``: minor updates in the contract's window, majors held.

The contract (§4.1.1, §4.1.3) applies minor updates by routine, plans major ones with the
client, and runs maintenance on working days and hours only; emergencies may run outside
them, the client informed. A run here:

1. checks the arguments and resolves the target hosts (exit 2 on any problem, no host
   touched);
2. decides the window for now, or for ``--at`` (``hostops window check``'s calendar):
   closed and no ``--emergency``: exit 1, nothing is changed and no run is recorded;
3. records the run in ``state/patch-runs/<time>/run.json`` (the moment, the window's
   decision, the emergency's reason); in an emergency writes the customer notice as
   ``emergency-notice-N.eml`` there and sends it when ``HOSTOPS_SMTP_HOST`` is set;
4. runs ``playbooks/patch.yml`` (rolling batches, health checks, restarts, reboots inside
   the window only) with the window's decision as an extra variable;
5. reads the per-host reports the playbook wrote in ``reports/`` and prints the summary:
   applied, held as major, failed, restarts and reboots, then the majors to plan with the
   client; ``summary.json`` keeps it with the run.

``plan`` does steps 1, 4 and 5 in check mode: it shows what a run would apply and hold
and changes nothing, at any time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hostops.core.errors import HostopsError, UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun, RunResult
from hostops.core.settings import inventories_or_default, state_dir
from hostops.core.targets import Inventory
from hostops.maintenance import notices
from hostops.module_utils.maintenance_window import (
    DEFAULT_CONFIG,
    WindowStatus,
    check_window,
    parse_at,
)
from hostops.orders.order import load_order
from hostops.patching import agreements as patch_agreements
from hostops.patching import agreements_cli as patch_agreements_cli
from hostops.patching import schedule as patch_schedule

LAB_GROUP = "hostops_patch"
CONTACT_VAR = "hostops_customer_email"
_SERIAL_ITEM = re.compile(r"[1-9][0-9]{0,3}%?")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops patch plan`` and ``hostops patch run``."""
    patch = subparsers.add_parser(
        "patch", help="minor updates in the maintenance window, majors held (§4.1.3)"
    )
    verbs = patch.add_subparsers(dest="patch_command", metavar="VERB", required=True)
    plan = verbs.add_parser(
        "plan",
        help="what a patch run would apply and hold (check mode, changes nothing)",
        description="Runs the patch playbook in check mode: minor updates that would be "
        "applied, major ones that would be held. Allowed at any time.",
    )
    _add_target_arguments(plan)
    plan.add_argument(
        "--json", action="store_true", help="the plan as JSON on stdout (progress to stderr)"
    )
    plan.set_defaults(func=cmd_plan)

    run = verbs.add_parser(
        "run",
        help="apply the minor updates inside the maintenance window",
        description="Applies the minor updates and holds the major ones, in rolling "
        "batches, with health checks before and after. Refused outside the maintenance "
        "window (exit 1, nothing changed) unless --emergency --reason TEXT, which records "
        "the reason and writes (and sends, with HOSTOPS_SMTP_HOST) the customer notice.",
    )
    _add_target_arguments(run)
    run.add_argument(
        "--at",
        metavar="ISO8601",
        help="decide the window for this moment instead of now (with a UTC offset or Z)",
    )
    run.add_argument(
        "--emergency",
        action="store_true",
        help="run even outside the window (needs --reason; the client is emailed)",
    )
    run.add_argument("--reason", metavar="TEXT", help="why the emergency cannot wait")
    run.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="EMAIL",
        help="customer contact for the emergency notice (repeatable); also read from "
        f"the inventory variable {CONTACT_VAR} and from --order",
    )
    run.add_argument(
        "--mail-report",
        action="store_true",
        help="email each customer contact the run's report on its servers (scheduled runs)",
    )
    run.set_defaults(func=cmd_run)
    patch_agreements_cli.register(verbs)
    patch_schedule.register(verbs)


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    where = add_inventory_or_lab(
        parser,
        inventory_help="inventory of the servers to patch (repeatable)",
        lab_help="the servers are lab hosts, named by --host",
        required=True,
    )
    # the older spelling of '--lab --host NAME', kept for scripts that use it
    where.add_argument("--lab-host", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="with --lab: a lab host, or the FQDN of an order's server 'order apply --lab' "
        "mapped onto one (repeatable)",
    )
    parser.add_argument("--limit", metavar="PATTERN", help="only these hosts of the inventory")
    parser.add_argument(
        "--order",
        type=Path,
        metavar="FILE",
        help="the customer's order: its HTTP checks run on its servers, its contact is told",
    )
    parser.add_argument(
        "--serial",
        metavar="N[,N...]",
        help="batch sizes, numbers or percentages (default: 1,25%%: one server, then a "
        "quarter at a time)",
    )
    parser.add_argument(
        "--max-fail-percentage",
        type=int,
        metavar="P",
        help="failed servers tolerated per batch, in %% (default 0: a failure stops the run)",
    )


# -- targets ----------------------------------------------------------------------------


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
        targets = _lab_targets(hosts, args.limit, "--host")
    elif args.lab_host:
        targets = _lab_targets(args.lab_host, args.limit, "--lab-host")
    else:
        targets = _inventory_targets(inventories_or_default(args.inventory), args.limit)
    if not targets.hosts:
        where = f"--limit {args.limit!r}" if args.limit else "the inventory"
        raise UsageError(f"{where}: no host to patch")
    if args.order is not None:
        _add_order(targets, args.order)
    return targets


def _inventory_targets(inventories: list[Path], limit: str | None) -> Targets:
    inventory = Inventory.open(inventories)
    problems: list[str] = []
    chosen = inventory.hosts(limit)
    contacts: dict[str, list[str]] = {}
    for host in chosen:
        value = inventory.host_vars(host).get(CONTACT_VAR)
        for email in [value] if isinstance(value, str) else list(value or []):
            if not notices.EMAIL.fullmatch(str(email)):
                problems.append(f"{host.name}: {CONTACT_VAR} {email!r} is not an email address")
            contacts.setdefault(str(email), []).append(host.name)
    if problems:
        raise UsageError(problems)
    return Targets(list(inventories), [host.name for host in chosen], contacts)


def _lab_targets(names: list[str], limit: str | None, option: str) -> Targets:
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


def _add_order(targets: Targets, path: Path) -> None:
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


def parse_serial(text: str | None) -> list[int | str] | None:
    """``1,25%`` -> ``[1, '25%']`` (Ansible's serial); UsageError when malformed."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(_SERIAL_ITEM.fullmatch(item) for item in items):
        raise UsageError(f"--serial: {text!r} must be numbers or percentages, e.g. 1,25%")
    return [item if item.endswith("%") else int(item) for item in items]


# -- the commands ---------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    _check_max_fail(args.max_fail_percentage)
    targets = resolve_targets(args)
    as_json = getattr(args, "json", False)
    # with --json, stdout carries the JSON document only; the progress goes to stderr
    out = sys.stderr if as_json else sys.stdout
    moment = datetime.now(UTC)
    status = check_window(moment, DEFAULT_CONFIG)
    print(f"patch plan for {len(targets.hosts)} host(s): check mode, nothing is changed", file=out)
    print(f"window now: {describe_window(status)}", file=out)
    run_dir = new_run_dir("plan")
    record = run_record(targets, moment, status, emergency=False, reason=None, plan=True)
    result, reports = execute(targets, run_dir, record, serial, args, check=True, out=out)
    code = finish(result, reports, targets, run_dir, record, plan=True, out=out)
    if as_json:
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["exit_status"] = code
        summary["run_dir"] = str(run_dir)
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return code


def cmd_run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    reason = (args.reason or "").strip()
    if args.emergency and not reason:
        problems.append(
            "--reason: required with --emergency (it is recorded and told to the client)"
        )
    if reason and not args.emergency:
        problems.append("--reason: only with --emergency")
    problems += notices.check_contacts(args.contact)
    moment = datetime.now(UTC)
    if args.at is not None:
        try:
            moment = parse_at(args.at)
        except ValueError as err:
            problems.append(f"--at: {err}")
    try:
        serial = parse_serial(args.serial)
    except UsageError as err:
        problems += err.problems
    try:
        _check_max_fail(args.max_fail_percentage)
    except UsageError as err:
        problems += err.problems
    if problems:
        raise UsageError(problems)
    targets = resolve_targets(args)
    for email in args.contact:
        targets.contacts[email] = list(targets.hosts)
    if getattr(args, "mail_report", False) and not targets.contacts:
        raise UsageError(
            "--mail-report: no customer contact: give --contact EMAIL, --order FILE with a "
            f"contact, or {CONTACT_VAR} in the inventory"
        )
    if args.emergency and not targets.contacts:
        raise UsageError(
            "--emergency: the client must be told (contract §4.1.3): give --contact EMAIL, "
            f"--order FILE with a contact, or {CONTACT_VAR} in the inventory"
        )

    status = check_window(moment, DEFAULT_CONFIG)
    if not status.open and not args.emergency:
        raise HostopsError(
            f"the maintenance window is {describe_window(status)}: nothing was changed "
            f"on {len(targets.hosts)} host(s). Run then, or use --emergency --reason TEXT "
            "for work that cannot wait (the client is emailed)."
        )
    print(
        f"patch run for {len(targets.hosts)} host(s) at "
        f"{moment.astimezone(notices.PARIS):%Y-%m-%d %H:%M} Paris time: "
        f"window {describe_window(status)}" + (f"; EMERGENCY: {reason}" if args.emergency else "")
    )
    run_dir = new_run_dir("run")
    record = run_record(
        targets, moment, status, emergency=args.emergency, reason=reason, plan=False
    )
    if args.emergency:
        record["notices"] = send_emergency_notices(targets, run_dir, reason)
    result, reports = execute(targets, run_dir, record, serial, args, check=False)
    code = finish(result, reports, targets, run_dir, record, plan=False)
    if getattr(args, "mail_report", False):
        patch_schedule.mail_reports(targets.contacts, run_dir)
    return code


def _check_max_fail(value: int | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise UsageError(f"--max-fail-percentage: {value} is not 0..100")


def describe_window(status: WindowStatus) -> str:
    if status.open:
        assert status.closes_at is not None
        return f"open until {status.closes_at:%H:%M}"
    assert status.next_open is not None
    return f"closed ({status.reason}; next opening {status.next_open:%Y-%m-%d %H:%M})"


def new_run_dir(kind: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = state_dir() / "patch-runs" / f"{stamp}-{kind}"
    path.mkdir(parents=True, mode=0o700)
    return path


def run_record(
    targets: Targets,
    moment: datetime,
    status: WindowStatus,
    *,
    emergency: bool,
    reason: str | None,
    plan: bool,
) -> dict[str, Any]:
    return {
        "kind": "plan" if plan else "run",
        "started_at": datetime.now(UTC)
        .astimezone(notices.PARIS)
        .isoformat(timespec="seconds"),
        "window": {
            "decided_for": moment.astimezone(notices.PARIS).isoformat(timespec="seconds"),
            "open": status.open,
            "reason": status.reason,
        },
        "emergency": emergency,
        "emergency_reason": reason or None,
        "operator": os.environ.get("SUDO_USER") or os.environ.get("USER") or "unknown",
        "hosts": targets.hosts,
        "inventories": [str(p.resolve()) for p in targets.inventories],
    }


def send_emergency_notices(targets: Targets, run_dir: Path, reason: str) -> list[dict[str, object]]:
    """One notice per customer contact, naming only that customer's hosts."""
    deliveries = []
    for index, (email, hosts) in enumerate(sorted(targets.contacts.items()), start=1):
        notice = notices.emergency_patch_notice(
            to=[email],
            hosts=hosts,
            started=datetime.now(UTC),
            reason=reason,
        )
        delivery = notices.deliver(notice, run_dir / f"emergency-notice-{index}.eml")
        print(f"emergency notice {delivery.describe()}")
        deliveries.append(delivery.as_dict())
    return deliveries


def execute(
    targets: Targets,
    run_dir: Path,
    record: dict[str, Any],
    serial: list[int | str] | None,
    args: argparse.Namespace,
    *,
    check: bool,
    out: TextIO = sys.stdout,
) -> tuple[RunResult, dict[str, dict[str, Any]]]:
    reports_dir = run_dir / "reports"
    reports_dir.mkdir(mode=0o700)
    inventories = list(targets.inventories)
    if targets.write_lab_inventory is not None:
        lab_inventory = run_dir / "lab-inventory.yml"
        targets.write_lab_inventory(lab_inventory)
        inventories.append(lab_inventory)
    extravars: dict[str, Any] = {
        "hostops_patch_window_open": bool(record["window"]["open"]),
        "hostops_patch_emergency": bool(record["emergency"]),
        "hostops_patch_reason": record["emergency_reason"] or "",
        "hostops_patch_report_dir": str(reports_dir),
        "hostops_patch_order_http_checks": targets.order_http_checks,
        # the client's agreements apply in the window only, never in an emergency outside it
        "hostops_patch_approved_majors": patch_agreements.approvals_for(
            targets.hosts, patch_agreements.load()
        )
        if check or record["window"]["open"]
        else {},
    }
    if serial is not None:
        extravars["hostops_patch_serial"] = serial
    if args.max_fail_percentage is not None:
        extravars["hostops_patch_max_fail_percentage"] = args.max_fail_percentage
    write_json(run_dir / "run.json", record)
    result = PlaybookRun(
        playbook="patch.yml",
        inventory=inventories,
        run_dir=run_dir / "runner",
        extravars=extravars,
        limit=",".join(targets.hosts),
        check=check,
        diff=check,
        out=out,
    ).execute()
    reports = {}
    for path in sorted(reports_dir.glob("*.json")):
        reports[path.stem] = json.loads(path.read_text())
    return result, reports


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# -- the summary ----------------------------------------------------------------------


def host_rows(
    hosts: Sequence[str], reports: Mapping[str, Mapping[str, Any]], result: RunResult
) -> list[dict[str, Any]]:
    """One summary row per host; a host without a report was not reached."""
    rows = []
    for host in hosts:
        report = reports.get(host)
        outcome = (report or {}).get("result") or {}
        held = outcome.get("held") or []
        if report is None:
            counts = result.hosts.get(host, {})
            status = "unreachable" if counts.get("unreachable") else "not run"
        else:
            status = str(report.get("status", "?"))
        rows.append(
            {
                "host": host,
                "status": status,
                "error": (report or {}).get("error"),
                "applied": outcome.get("applied") or [],
                "held_major": [h for h in held if h.get("reason") == "major"],
                "held_other": [h for h in held if h.get("reason") != "major"],
                "failed": outcome.get("failed") or [],
                "approved": outcome.get("approved") or [],
                "restarted": outcome.get("restarted") or [],
                "restart_skipped": outcome.get("restart_skipped") or [],
                "rebooted": bool(outcome.get("rebooted")),
                "reboot_pending": bool(outcome.get("reboot_pending")),
                "reboot_reasons": outcome.get("reboot_reasons") or [],
            }
        )
    return rows


def summary_table(rows: Sequence[Mapping[str, Any]], plan: bool) -> str:
    applied = "WOULD APPLY" if plan else "APPLIED"
    header = (
        "HOST",
        "STATUS",
        applied,
        "HELD (MAJOR)",
        "HELD (OTHER)",
        "FAILED",
        "RESTARTED",
        "REBOOT",
    )
    lines = [header]
    for row in rows:
        reboot = "done" if row["rebooted"] else "pending" if row["reboot_pending"] else "no"
        lines.append(
            (
                row["host"],
                row["status"],
                str(len(row["applied"])),
                str(len(row["held_major"])),
                str(len(row["held_other"])),
                str(len(row["failed"])),
                str(len(row["restarted"])),
                reboot,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _versions(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']} {entry.get('from') or '(new)'} -> {entry['to']}"


def details(rows: Sequence[Mapping[str, Any]], plan: bool) -> list[str]:
    lines: list[str] = []
    verb = "would apply" if plan else "applied"
    for row in rows:
        if row["applied"]:
            names = ", ".join(_versions(entry) for entry in row["applied"])
            lines.append(f"{row['host']} {verb}: {names}")
        for entry in row["failed"]:
            lines.append(f"{row['host']} FAILED: {_versions(entry)}: {entry.get('msg', '')}")
        if row["error"]:
            lines.append(f"{row['host']} FAILED: {row['error']}")
        for entry in row.get("approved", []):
            if entry.get("outcome") not in ("applied", "would apply"):
                lines.append(
                    f"{row['host']} approved major {entry['name']} to {entry.get('to')}: "
                    f"{entry.get('outcome')}"
                    + (f" ({entry['reason']})" if entry.get("reason") else "")
                )
        for entry in row["held_other"]:
            lines.append(f"{row['host']} held: {_versions(entry)} ({entry['reason']})")
        if row["restart_skipped"]:
            lines.append(
                f"{row['host']} not restarted (until the next reboot): "
                + ", ".join(row["restart_skipped"])
            )
        if row["reboot_pending"]:
            lines.append(
                f"{row['host']} needs a reboot ({'; '.join(row['reboot_reasons'])}): "
                "not done (outside the window, or not allowed on this host)"
            )
    majors = [(row["host"], entry) for row in rows for entry in row["held_major"]]
    if majors:
        lines += ["", "Major updates held, to plan with the client (§4.1.3):"]
        lines += [f"  {host}  {_versions(entry)}" for host, entry in majors]
    return lines


def finish(
    result: RunResult,
    reports: Mapping[str, Mapping[str, Any]],
    targets: Targets,
    run_dir: Path,
    record: dict[str, Any],
    *,
    plan: bool,
    out: TextIO = sys.stdout,
) -> int:
    rows = host_rows(targets.hosts, reports, result)
    table = summary_table(rows, plan)
    extra = details(rows, plan)
    agreements = patch_agreements.overview(
        targets.hosts, patch_agreements.after_run(reports, run_dir, check=plan)
    )
    extra += patch_agreements.overview_lines(agreements)
    print("", file=out)
    print(table, file=out)
    if extra:
        print("", file=out)
        print("\n".join(extra), file=out)
    record.update(
        finished_at=datetime.now(UTC)
        .astimezone(notices.PARIS)
        .isoformat(timespec="seconds"),
        status=result.status,
        rc=result.rc,
    )
    write_json(run_dir / "run.json", record)
    write_json(run_dir / "summary.json", {"run": record, "hosts": rows, "majors": agreements})
    (run_dir / "summary.txt").write_text(table + "\n" + ("\n".join(extra) + "\n" if extra else ""))
    what = "plan" if plan else "run"
    if not result.ok:
        for failure in result.failures:
            if failure.host not in reports:  # the others are in the details above
                print(failure.line, file=out)
        if not result.failures:
            print("\n".join(result.failure_lines), file=out)
        print(f"patch {what} failed; reports and artifacts: {run_dir}", file=out)
        return 1
    changes = "predicted change(s)" if plan else "change(s)"
    print(
        f"patch {what} done: {result.changed} {changes}; reports: {run_dir / 'reports'}", file=out
    )
    return 0
