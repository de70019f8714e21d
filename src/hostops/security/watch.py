"""The security watch's weekly report: each server's vulnerabilities (from debsecan on the
server) qualified against the contract (urgent, fixable as a minor update, or needing the
client's approval as a major), counted, rendered as text and mailed to each customer with
only that customer's servers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hostops.maintenance import notices
from hostops.module_utils.versions import MAJOR, classify_update
from hostops.orders import fleet

APPROVAL = "needs the client's approval (hostops patch approve)"
# debsecan's urgencies, most urgent first; "high" is its highest (the tracker's
# "critical" is not in its data format)
URGENCIES = ("high", "medium", "low", "unknown")
URGENT = {"high", "critical"}


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
