"""An order's month as a document: per server and for the order, the incidents found, the
availability and credits (contract §5), the client report of §4 (backups, patches, alerts
from Prometheus and the state directory), rendered as Markdown and plotted as a PNG."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hostops.core.settings import RUN_STAMP, state_dir
from hostops.module_utils.sla import (
    TARGET_PERCENT,
    Incident,
    Month,
    MonthResult,
    category,
    format_duration,
)
from hostops.sla.incidents import summary
from hostops.sla.report import (
    PARIS,
    PROBE_JOBS,
    Found,
    Prometheus,
    alert_counts,
    clip,
    order_incidents,
    union,
)


@dataclass(frozen=True)
class Request:
    order: dict[str, Any]
    order_id: str
    month: Month
    servers: tuple[str, ...]
    fee: Decimal
    gtr: timedelta
    ops: tuple[Incident, ...]
    contact: str | None
    prometheus: Prometheus
    monitoring_server: str


@dataclass
class ServerReport:
    hostname: str
    found: list[Found]
    result: MonthResult
    measured: timedelta
    client: dict[str, Any]


def client_report(
    prometheus: Prometheus, server: str, month: Month, end: datetime, step: timedelta
) -> dict[str, Any]:
    """§4's monthly report of one server: backups, patches, alerts, from what was
    recorded (Prometheus at the end of the range, the state directory)."""
    selector = f'server="{server}"'
    last_success = {
        item["metric"].get("kind", "backup"): float(item["value"][1])
        for item in prometheus.instant(
            f"hostops_backup_last_success_timestamp_seconds{{{selector}}}", end
        )
    }
    failed = [
        item["metric"].get("kind", "backup")
        for item in prometheus.instant(f"hostops_backup_last_run_failed{{{selector}}} > 0", end)
    ]
    alerts = alert_counts(
        prometheus.range(f'ALERTS{{{selector},alertstate="firing"}}', month.start, end, step),
        step,
    )
    return {
        "backups": {
            "last_success": {
                kind: datetime.fromtimestamp(stamp, UTC).astimezone(PARIS).isoformat()
                for kind, stamp in sorted(last_success.items())
            },
            "last_run_failed": sorted(failed),
            "verify_runs": verify_runs(server, month),
        },
        "patches": patch_runs(server, month),
        "alerts_raised": alerts,
    }


def _stamp_in(month: Month, name: str) -> bool:
    """Whether a run directory's name (``new_run_dir``: UTC time, then ``-KIND``) falls
    in MONTH."""
    try:
        moment = datetime.strptime(name.split("-", 1)[0], RUN_STAMP).replace(tzinfo=UTC)
    except ValueError:
        return False
    return month.contains(moment)


def verify_runs(server: str, month: Month) -> list[dict[str, str]]:
    """``hostops backup verify`` runs of the month on this server, with their outcome."""
    runs = []
    folder = state_dir() / "backups" / server / "runs"
    for path in sorted(folder.glob("*-verify")) if folder.is_dir() else []:
        if not _stamp_in(month, path.name):
            continue
        statuses = [p.read_text().strip() for p in path.glob("runner/artifacts/*/status")]
        runs.append({"run": path.name, "status": statuses[0] if statuses else "unknown"})
    return runs


def patch_runs(server: str, month: Month) -> dict[str, Any]:
    """Packages applied and held on this server by the month's patch runs (not plans)."""
    applied: list[str] = []
    held: list[str] = []
    runs = 0
    folder = state_dir() / "patch-runs"
    for path in sorted(folder.glob("*-run/reports")) if folder.is_dir() else []:
        report = path / f"{server}.json"
        if not _stamp_in(month, path.parent.name) or not report.is_file():
            continue
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            continue
        if data.get("check_mode"):
            continue
        runs += 1
        result = data.get("result") or {}
        applied += [_package(item) for item in result.get("applied") or []]
        held += [_package(item) for item in result.get("held") or []]
    return {"runs": runs, "applied": applied, "held": sorted(set(held))}


def _package(item: object) -> str:
    if isinstance(item, Mapping):
        name = item.get("name") or item.get("package") or "?"
        version = item.get("to") or item.get("version") or ""
        return f"{name} {version}".strip()
    return str(item)


def as_document(
    request: Request,
    *,
    now: datetime,
    end: datetime,
    step: timedelta,
    per_server: Mapping[str, ServerReport],
    order_result: MonthResult,
    notes: Sequence[str],
) -> dict[str, Any]:
    def number(values: Mapping[str, object]) -> dict[str, object]:
        return {k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()}

    def incidents(found: Sequence[Found]) -> list[dict[str, Any]]:
        return [
            {
                "start": _paris(f.incident.start),
                "end": _paris(f.incident.end),
                "duration_seconds": int((f.incident.end - f.incident.start).total_seconds()),
                "cause": f.incident.cause,
                "counted_as": category(f.incident),
                "source": f.source,
                "ticket_opened": _paris(f.incident.ticket_opened),
                "announced": _paris(f.incident.announced),
            }
            for f in found
        ]

    month = request.month
    return {
        "order": request.order_id,
        "customer": (request.order.get("hostops_customer") or {}).get("name"),
        "month": str(month),
        "generated_at": _paris(now),
        "measured_until": _paris(end),
        "complete": end >= month.end,
        "monthly_fee_eur": float(request.fee),
        "gtr_hours": request.gtr.total_seconds() / 3600,
        "monitoring": {
            "server": request.monitoring_server,
            "probes": list(PROBE_JOBS),
            "step_seconds": step.total_seconds(),
        },
        "summary": number(summary(order_result)),
        "incidents": incidents(order_incidents({s: r.found for s, r in per_server.items()})),
        "notes": [*order_result.notes, *notes],
        "servers": [
            {
                "hostname": report.hostname,
                "summary": number(summary(report.result)),
                "measured_seconds": int(report.measured.total_seconds()),
                "incidents": incidents(report.found),
                "notes": list(report.result.notes),
                "client_report": report.client,
            }
            for report in per_server.values()
        ],
    }


def _paris(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(PARIS).isoformat(timespec="seconds")


def _seconds(value: object) -> str:
    return format_duration(timedelta(seconds=int(str(value))))


def render_markdown(doc: Mapping[str, Any]) -> str:
    total = doc["summary"]
    lines = [
        f"# Service report {doc['month']}: order {doc['order']} ({doc['customer']})",
        "",
        f"Measured until {doc['measured_until']}"
        + ("" if doc["complete"] else " (the month is not over: a partial report)")
        + f"; probes {', '.join(doc['monitoring']['probes'])} every "
        f"{doc['monitoring']['step_seconds']:g} s on {doc['monitoring']['server']}.",
        "",
        "## Availability (contract §5)",
        "",
        "| | availability | target 99.9 % | provider unavailability | credit |",
        "|---|---|---|---|---|",
    ]
    rows = [("order", total)] + [(s["hostname"], s["summary"]) for s in doc["servers"]]
    for name, values in rows:
        lines.append(
            f"| {name} | {values['availability_percent']:.6f} % | "
            f"{'met' if values['target_met'] else 'MISSED'} | "
            f"{_seconds(values['unavailable_seconds'])} | {values['total_credit_eur']:.2f} EUR |"
        )
    lines += [
        "",
        f"Monthly fee {doc['monthly_fee_eur']:.2f} EUR, GTR {doc['gtr_hours']:g} h, "
        f"availability target {TARGET_PERCENT} %. Order credit: availability "
        f"{total['availability_penalty_eur']:.2f} EUR + GTR {total['gtr_penalty_eur']:.2f} EUR"
        f" = {total['total_credit_eur']:.2f} EUR.",
        "",
        "## Incidents",
        "",
    ]
    if doc["incidents"]:
        lines += [
            "| start | end | duration | cause | counted as | source |",
            "|---|---|---|---|---|---|",
        ]
        for item in doc["incidents"]:
            lines.append(
                f"| {item['start']} | {item['end']} | {_seconds(item['duration_seconds'])} | "
                f"{item['cause']} | {item['counted_as']} | {item['source']} |"
            )
        lines.append("")
        for server in doc["servers"]:
            count = len(server["incidents"])
            lines.append(
                f"- {server['hostname']}: {count} incident(s), monitoring data for "
                f"{_seconds(server['measured_seconds'])} of the month"
            )
    else:
        lines.append("None recorded.")
    lines += ["", "## Monthly report per server (contract §4)", ""]
    for server in doc["servers"]:
        client = server["client_report"]
        backups = client["backups"]
        success = ", ".join(f"{k} {v}" for k, v in backups["last_success"].items())
        verify = ", ".join(f"{r['run']}: {r['status']}" for r in backups["verify_runs"])
        patches = client["patches"]
        alerts = ", ".join(f"{name} x{n}" for name, n in client["alerts_raised"].items())
        lines += [
            f"### {server['hostname']}",
            "",
            f"- Backups, last success: {success or 'none recorded (no backups on this server)'}",
            f"- Backups, last run failed: {', '.join(backups['last_run_failed']) or 'no'}",
            f"- Backup checks (hostops backup verify): {verify or 'none this month'}",
            f"- Patch runs: {patches['runs']}; applied: "
            f"{', '.join(patches['applied']) or 'nothing'}; held (major, to plan with you): "
            f"{', '.join(patches['held']) or 'nothing'}",
            f"- Alerts raised: {alerts or 'none'}",
            "",
        ]
    notes = [*doc["notes"], *(n for s in doc["servers"] for n in s["notes"])]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in dict.fromkeys(notes)), ""]
    return "\n".join(lines)


COLOURS = {"provider": "#c0392b", "client": "#2e86c1", "excluded_planned": "#95a5a6"}


def plot(
    path: Path,
    month: Month,
    end: datetime,
    per_server: Mapping[str, ServerReport],
    order_result: MonthResult,
) -> None:
    """The month at a glance: each server's daily availability, and its incidents on a
    timeline (red: the provider's, blue: the client's, grey: announced planned work)."""
    import matplotlib  # noqa: PLC0415 - heavy, only needed here

    matplotlib.use("Agg")
    import matplotlib.dates as mdates  # noqa: PLC0415
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = list(per_server)
    figure, (daily, timeline) = plt.subplots(
        2, 1, figsize=(11, 3 + 0.5 * len(names)), sharex=True, height_ratios=[2, 1]
    )
    days = _days(month)
    for name in names:
        provider = [
            (f.incident.start, f.incident.end)
            for f in per_server[name].found
            if category(f.incident) == "provider"
        ]
        values = [_availability_in(union(provider), a, b) for a, b in days if a < end]
        starts = [a.astimezone(PARIS) for a, _ in days[: len(values)]]
        daily.step(starts, values, where="post", label=name)
    daily.axhline(float(TARGET_PERCENT), color="#7f8c8d", linestyle="--", linewidth=0.8)
    daily.set_ylabel("availability per day (%)")
    daily.set_ylim(min(99.0, daily.get_ylim()[0]), 100.05)
    daily.legend(loc="lower left", fontsize="small")
    daily.set_title(
        f"{month}: availability {order_result.availability_percent} % "
        f"(target {TARGET_PERCENT} %, {'met' if order_result.target_met else 'MISSED'})"
    )
    minimum = (month.end - month.start) / 400  # a short incident stays visible
    for row, name in enumerate(names):
        for found in per_server[name].found:
            inside = clip([(found.incident.start, found.incident.end)], month.start, month.end)
            if not inside:
                continue
            a, b = inside[0]
            width = max(b - a, minimum)
            left = mdates.date2num(a.astimezone(PARIS))  # type: ignore[no-untyped-call]
            timeline.broken_barh(
                [(left, width.total_seconds() / 86400)],
                (row - 0.4, 0.8),
                color=COLOURS[category(found.incident)],
            )
    timeline.set_yticks(range(len(names)), names)
    timeline.set_ylim(-0.6, len(names) - 0.4)
    timeline.set_xlim(month.start.astimezone(PARIS), month.end.astimezone(PARIS))
    timeline.xaxis.set_major_formatter(
        mdates.DateFormatter("%d", tz=PARIS)  # type: ignore[no-untyped-call]
    )
    timeline.set_xlabel(f"day of {month} (Europe/Paris)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _days(month: Month) -> list[tuple[datetime, datetime]]:
    first = month.start.astimezone(PARIS)
    days: list[tuple[datetime, datetime]] = []
    day = first.replace(tzinfo=None)
    while True:
        start = day.replace(tzinfo=PARIS).astimezone(UTC)
        if start >= month.end:
            return days
        following = (day + timedelta(days=1)).replace(tzinfo=PARIS).astimezone(UTC)
        days.append((start, min(following, month.end)))
        day += timedelta(days=1)


def _availability_in(spans: Sequence[tuple[datetime, datetime]], a: datetime, b: datetime) -> float:
    down = sum(((y - x) for x, y in clip(spans, a, b)), timedelta())
    return 100 * (1 - down / (b - a))
