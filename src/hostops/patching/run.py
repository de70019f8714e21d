"""A patch run: its record (the window's decision, the emergency's reason), the emergency
notices, playbooks/patch.yml through ansible-runner, and the per-host reports read back
into the summary (applied, held as major, failed, restarts, reboots).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hostops.core.errors import UsageError
from hostops.core.runner import PlaybookRun, RunResult
from hostops.core.settings import new_run_dir, operator
from hostops.maintenance import notices
from hostops.module_utils.maintenance_window import (
    WindowStatus,
)
from hostops.patching import agreements as patch_agreements
from hostops.patching.targets import Targets

_SERIAL_ITEM = re.compile(r"[1-9][0-9]{0,3}%?")


def parse_serial(text: str | None) -> list[int | str] | None:
    """``1,25%`` -> ``[1, '25%']`` (Ansible's serial); UsageError when malformed."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(_SERIAL_ITEM.fullmatch(item) for item in items):
        raise UsageError(f"--serial: {text!r} must be numbers or percentages, e.g. 1,25%")
    if any(item.endswith("%") and int(item[:-1]) > 100 for item in items):
        raise UsageError(f"--serial: {text!r} has a percentage over 100%")
    return [item if item.endswith("%") else int(item) for item in items]


def check_max_fail(value: int | None) -> None:
    if value is not None and not 0 <= value <= 100:
        raise UsageError(f"--max-fail-percentage: {value} is not 0..100")


def describe_window(status: WindowStatus) -> str:
    if status.open:
        assert status.closes_at is not None
        return f"open until {status.closes_at:%H:%M}"
    assert status.next_open is not None
    return f"closed ({status.reason}; next opening {status.next_open:%Y-%m-%d %H:%M})"


def new_patch_run_dir(kind: str) -> Path:
    return new_run_dir("patch-runs", kind=kind)


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
        "started_at": datetime.now(UTC).astimezone(notices.PARIS).isoformat(timespec="seconds"),
        "window": {
            "decided_for": moment.astimezone(notices.PARIS).isoformat(timespec="seconds"),
            "open": status.open,
            "reason": status.reason,
        },
        "emergency": emergency,
        "emergency_reason": reason or None,
        "operator": operator(),
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
        finished_at=datetime.now(UTC).astimezone(notices.PARIS).isoformat(timespec="seconds"),
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
