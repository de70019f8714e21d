"""``hostops security report``: the open vulnerabilities of the servers, per customer.

The contract has the provider watch and qualify security flaws (§4.1.1). Each server of
levels supervision, plesk and custom runs Debian's debsecan from a timer
(``roles/security_watch``), which publishes the counts as metrics; this command is the
weekly report: it runs the watch on the chosen servers now (``playbooks/security-report.yml``),
collects each one's list, and prints it per customer and server (or, with ``--json``,
the same as one JSON document). A fix for a flaw of high (or higher) urgency whose
update is a major one under the contract's rule (``hostops updates classify``: the
version apt would install against the installed one) is flagged: a patch run holds it,
so it needs the client's approval (``hostops patch approve``).

Exit status: 0 when every server answered, 1 when one could not be reached or its
watch failed (the others are still reported), 2 for bad arguments (no host touched).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun
from hostops.core.settings import inventories_or_default, state_dir
from hostops.maintenance import notices
from hostops.module_utils.versions import MAJOR, classify_update
from hostops.orders import fleet
from hostops.patching.targets import Targets, inventory_targets, lab_targets

APPROVAL = "needs the client's approval (hostops patch approve)"
# debsecan's urgencies, most urgent first; "high" is its highest (the tracker's
# "critical" is not in its data format)
URGENCIES = ("high", "medium", "low", "unknown")
URGENT = {"high", "critical"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops security report``."""
    security = subparsers.add_parser(
        "security", help="open vulnerabilities of the servers' packages (debsecan, §4.1.1)"
    )
    verbs = security.add_subparsers(dest="security_command", metavar="VERB", required=True)
    report = verbs.add_parser(
        "report",
        help="the open vulnerabilities per customer and server (runs the watch now)",
        description="Runs the security watch (debsecan) on the servers now and lists their "
        "open vulnerabilities per customer; fixes of high-urgency flaws that are major "
        "updates are flagged as needing the client's approval (hostops patch approve).",
    )
    add_inventory_or_lab(
        report,
        inventory_help="inventory of the servers (repeatable; default: the configuration's)",
        lab_help="the servers are lab hosts (all of them, or --host)",
    )
    which = report.add_mutually_exclusive_group()
    which.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="this server only (repeatable; with --lab a lab host or an order's FQDN)",
    )
    which.add_argument(
        "--customer",
        metavar="NAME",
        help="the servers of this customer (as on its orders, see 'hostops fleet')",
    )
    report.add_argument(
        "--json", action="store_true", help="the report as JSON on stdout (progress to stderr)"
    )
    report.add_argument(
        "--mail",
        action="store_true",
        help="email each delivered order's contact the part of the report on its own "
        "servers (the weekly report; HOSTOPS_SMTP_HOST, else the .eml files only)",
    )
    report.set_defaults(func=cmd_report)


def customer_servers(name: str) -> list[str]:
    """The delivered servers of customer NAME (the state directory's orders)."""
    customers = fleet.by_customer()
    if name not in customers:
        known = ", ".join(repr(c) for c in sorted(customers)) or "none yet"
        raise UsageError(
            f"--customer: {name!r} is not a customer of a delivered order (known: {known})"
        )
    return sorted(
        {str(server["hostname"]) for servers in customers[name].values() for server in servers}
    )


def resolve(args: argparse.Namespace) -> Targets:
    """The servers to report on; UsageError (exit 2) before any host is touched."""
    names: list[str] = list(args.host)
    if args.customer is not None:
        names = customer_servers(args.customer)
    if args.lab:
        if not names:
            from hostops.lab.nspawn import Lab, LabState  # noqa: PLC0415 - lab only

            names = sorted(LabState.load(Lab().paths.state_file).hosts)
        option = "--customer" if args.customer is not None else "--host"
        return lab_targets(names, None, option)
    inventories = inventories_or_default(args.inventory)
    if not inventories:
        raise UsageError("--inventory: none given and none in the configuration file")
    targets = inventory_targets(inventories, ",".join(names) or None)
    missing = [name for name in names if name not in targets.hosts]
    if missing:
        raise UsageError([f"--host: {name!r} is not in the inventory" for name in missing])
    return targets


def cmd_report(args: argparse.Namespace) -> int:
    targets = resolve(args)
    out = sys.stderr if args.json else sys.stdout
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = state_dir() / "security-reports" / stamp
    reports_dir = run_dir / "hosts"
    reports_dir.mkdir(parents=True, mode=0o700)
    inventories = list(targets.inventories)
    if targets.write_lab_inventory is not None:
        inventories.append(run_dir / "lab-inventory.yml")
        targets.write_lab_inventory(inventories[-1])
    print(f"security report for {len(targets.hosts)} host(s): running the watch", file=out)
    result = PlaybookRun(
        playbook="security-report.yml",
        inventory=inventories,
        run_dir=run_dir / "runner",
        extravars={"hostops_security_report_dir": str(reports_dir)},
        limit=",".join(targets.hosts),
        out=out,
    ).execute()
    collected = {p.stem: json.loads(p.read_text()) for p in sorted(reports_dir.glob("*.json"))}
    report = build_report(targets.hosts, collected, customer=args.customer)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_text(report))
    if args.mail:
        for line in mail_reports(report, run_dir):
            print(line, file=out)
    for line in result.failure_lines:
        print(line, file=sys.stderr)
    failed = [h for h in report["hosts"] if h["status"] not in ("ok", "not watched")]
    return 1 if failed or not result.ok else 0


def qualify(vulnerability: Mapping[str, Any]) -> dict[str, Any]:
    """One vulnerability with its update's class and whether it needs the client's word."""
    entry = dict(vulnerability)
    installed, candidate = entry.get("installed"), entry.get("candidate")
    update = None
    if entry.get("fixed") and installed and candidate and candidate != installed:
        try:
            update = classify_update(str(installed), str(candidate))
        except ValueError:
            update = None
    entry["update"] = update
    entry["needs_approval"] = bool(update == MAJOR and entry.get("urgency") in URGENT)
    return entry


def build_report(
    hosts: Sequence[str], collected: Mapping[str, Mapping[str, Any]], customer: str | None
) -> dict[str, Any]:
    rows = []
    for host in hosts:
        data = collected.get(host)
        order = (data or {}).get("order") or {}
        row: dict[str, Any] = {
            "host": host,
            # the order's name for it (the lab's hosts have names of their own)
            "server": order.get("fqdn") or (data or {}).get("fqdn") or host,
            "customer": order.get("customer") or customer or "",
            "order": order.get("order") or "",
            "managed_level": order.get("managed_level") or "",
        }
        if data is None:
            row.update(status="unreachable", vulnerabilities=[])
        elif not data.get("watched"):
            row.update(status="not watched", vulnerabilities=[])
        else:
            watch = data.get("report") or {}
            last_run = watch.get("last_run") or {"failed": True, "error": "no report written"}
            row["scanned_at"] = watch.get("scanned_at")
            row["status"] = "watch failed" if last_run.get("failed") else "ok"
            if last_run.get("failed"):
                row["error"] = str(last_run.get("error") or "").strip()
            row["vulnerabilities"] = [qualify(v) for v in watch.get("vulnerabilities", [])]
        row["counts"] = counts(row["vulnerabilities"])
        row["needs_approval"] = sorted(
            {(v["package"], v["candidate"]) for v in row["vulnerabilities"] if v["needs_approval"]}
        )
        rows.append(row)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "customer": customer,
        "hosts": rows,
    }


def mail_reports(report: Mapping[str, Any], run_dir: Path) -> list[str]:
    """Email each delivered order's contact the report on that order's servers only (one
    customer never sees another's); the .eml files stay in RUN_DIR. Lines for the
    operator: what became of each order's mail."""
    emails = fleet.contacts()
    by_order: dict[str, list[Mapping[str, Any]]] = {}
    for row in report["hosts"]:
        by_order.setdefault(str(row.get("order") or ""), []).append(row)
    lines = []
    for order, rows in sorted(by_order.items()):
        names = ", ".join(str(row["server"]) for row in rows)
        if not order or order not in emails:
            lines.append(f"security report of {names}: not mailed (no delivered order's contact)")
            continue
        part = {**report, "hosts": rows}
        notice = notices.Notice(
            to=(emails[order],),
            subject=f"Rapport de sécurité : commande {order}",
            body="Bonjour,\n\nVoici les vulnérabilités connues des logiciels de vos serveurs "
            f"(commande {order}), relevées par notre veille de sécurité.\n\n"
            f"{render_text(part)}\n\nL'équipe infogérance Alixans\n",
            attachments=(
                (
                    "security-report.json",
                    "application/json",
                    (json.dumps(part, indent=2, ensure_ascii=False) + "\n").encode(),
                ),
            ),
        )
        delivery = notices.deliver(notice, run_dir / f"security-report-{order}.eml")
        lines.append(f"security report of order {order}: {delivery.describe()}")
    return lines


def counts(vulnerabilities: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Open (vulnerability, source package) pairs by urgency: total and with a fix."""
    pairs = {(v["cve"], v.get("source")): v for v in vulnerabilities}
    table = {u: {"open": 0, "fixed": 0} for u in URGENCIES}
    for v in pairs.values():
        cell = table.setdefault(str(v.get("urgency") or "unknown"), {"open": 0, "fixed": 0})
        cell["open"] += 1
        cell["fixed"] += 1 if v.get("fixed") else 0
    return table


def render_text(report: Mapping[str, Any]) -> str:
    lines: list[str] = []
    by_customer: dict[str, list[Mapping[str, Any]]] = {}
    for row in report["hosts"]:
        by_customer.setdefault(row["customer"] or "(no order recorded)", []).append(row)
    for customer, rows in sorted(by_customer.items()):
        lines.append(f"customer {customer}")
        for row in rows:
            total = sum(cell["open"] for cell in row["counts"].values())
            summary = ", ".join(
                f"{u} {row['counts'][u]['open']} ({row['counts'][u]['fixed']} fixed)"
                for u in URGENCIES
                if row["counts"][u]["open"]
            )
            head = f"  {row['server']}"
            if row["order"]:
                head += f" (order {row['order']})"
            if row["status"] != "ok":
                lines.append(
                    f"{head}: {row['status']}" + (f": {row['error']}" if row.get("error") else "")
                )
                if not row["vulnerabilities"]:
                    continue
            else:
                lines.append(
                    f"{head}: {total} open vulnerabilit{'y' if total == 1 else 'ies'}"
                    + (f": {summary}" if summary else "")
                )
            ordered = sorted(
                row["vulnerabilities"],
                key=lambda v: (
                    URGENCIES.index(v["urgency"]) if v["urgency"] in URGENCIES else 9,
                    v["package"],
                    v["cve"],
                ),
            )
            for v in ordered:
                fix = (
                    f"fix {v['candidate']} ({v['update']})"
                    if v.get("update")
                    else "fixed in Debian"
                    if v["fixed"]
                    else "no fix yet"
                )
                flag = f"  ** {APPROVAL}" if v["needs_approval"] else ""
                what = f"{v['package']} {v['installed']}"
                lines.append(f"    {v['cve']:<16} {v['urgency']:<7} {what}: {fix}{flag}")
            for package, candidate in row["needs_approval"]:
                lines.append(f"    major update {package} {candidate}: {APPROVAL}")
    return "\n".join(lines)
