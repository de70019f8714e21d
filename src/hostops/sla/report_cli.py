"""``hostops sla report --order ORDER --month YYYY-MM``: the month's report of an order.

Availability and credits per server and for the order (contract §5), from Prometheus's
probes, the maintenance hostops announced and an optional ops file of incidents
(:mod:`hostops.sla.report`), and the monthly client report of §4 (backups, patches,
alerts) from what the monitoring and the state directory recorded. Written to
``<state>/orders/ORDER/reports/YYYY-MM/`` as ``report.md``, ``report.json`` and
``availability.png``; ``--send`` mails them to the order's contact.

Here: every option is checked, the order found, the monitoring server and its credentials
resolved before Prometheus is asked anything (exit 2 otherwise), then the document is
built (:mod:`hostops.sla.document`), written and sent.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.settings import inventories_or_default, settings, state_dir
from hostops.core.targets import Inventory, lab_hosts
from hostops.maintenance import notices
from hostops.module_utils.sla import (
    Incident,
    Month,
    MonthInput,
    compute,
)
from hostops.monitoring.registration import MONITORING_GROUP
from hostops.orders.order import ORDER_ID
from hostops.sla.document import (
    Request,
    ServerReport,
    as_document,
    client_report,
    plot,
    render_markdown,
)
from hostops.sla.incidents import load_incidents
from hostops.sla.report import (
    PROMETHEUS_PORT,
    Prometheus,
    clip,
    down_spans,
    measured_time,
    order_incidents,
    probe_query,
    read_announcements,
    sample_states,
    server_incidents,
)

_MONTH = re.compile(r"(\d{4})-(\d{2})")
OPS_USER = "ops"


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = verbs.add_parser(
        "report",
        help="an order's month: availability and credits from monitoring, and the client report",
        description="Build one order's month of service levels from Prometheus's ping and "
        "HTTP probes, the maintenance announced with 'hostops maintenance announce' and an "
        "optional ops file of incidents (tickets, causes), then apply the contract's rules "
        "(docs/sla.md). Writes report.md, report.json and availability.png in the order's "
        "state directory; --send mails them to the order's contact.",
    )
    report.add_argument("--order", required=True, metavar="ORDER", help="the order number")
    report.add_argument("--month", required=True, metavar="YYYY-MM", help="the month (Paris)")
    report.add_argument(
        "--incidents",
        type=Path,
        metavar="FILE",
        help="ops' incidents of the month (the file of 'sla compute'), merged",
    )
    add_inventory_or_lab(
        report,
        inventory_help="inventory holding the monitoring server (repeatable)",
        lab_help="the monitoring server is a lab host",
    )
    report.add_argument(
        "--monitoring-server",
        metavar="NAME",
        help="the monitoring server (default: the inventory's group monitoring_servers; "
        "with --lab, monitoring1)",
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--send", action="store_true", help="mail it to the order's contact")
    report.set_defaults(func=cmd_report)


# -- Checking everything first -------------------------------------------------------------------


def parse_month(text: str) -> Month:
    match = _MONTH.fullmatch(text)
    if match is None or not 1 <= int(match[2]) <= 12 or int(match[1]) < 2000:
        raise UsageError(f"--month: {text!r} is not a month written YYYY-MM")
    return Month(int(match[1]), int(match[2]))


def read_order(order_id: str) -> dict[str, Any]:
    if not ORDER_ID.fullmatch(order_id):
        raise UsageError(f"--order: {order_id!r} is not an order number")
    path = state_dir() / "orders" / order_id / "order.json"
    if not path.is_file():
        root = state_dir() / "orders"
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise UsageError(
            f"--order: {order_id!r} is not a known order (known: {', '.join(known) or 'none'})"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--order: {path} cannot be read ({err})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--order: {path} is not an order record")
    return data


def check(args: argparse.Namespace, now: datetime) -> Request:
    problems: list[str] = []
    month: Month | None = None
    try:
        month = parse_month(args.month)
    except UsageError as err:
        problems += err.problems
    if month is not None and month.start > now:
        problems.append(f"--month: {args.month} has not started yet")
        month = None
    order: dict[str, Any] = {}
    try:
        order = read_order(args.order)
    except UsageError as err:
        problems += err.problems
    ops: tuple[Incident, ...] = ()
    fee: Decimal | None = None
    gtr: timedelta | None = None
    if args.incidents is not None:
        try:
            data = load_incidents(args.incidents)
        except UsageError as err:
            problems += [f"--incidents: {p}" for p in err.problems]
        else:
            if month is not None and data.month != month:
                problems.append(
                    f"--incidents: {args.incidents} is for month {data.month}, not {month}"
                )
            ops, fee, gtr = data.incidents, data.monthly_fee_eur, data.gtr
    sla = order.get("hostops_sla") or {}
    if fee is None and sla:
        fee = Decimal(str(sla["monthly_fee_eur"])).quantize(Decimal("0.01"))
        gtr = timedelta(hours=float(sla["gtr_hours"]))
    if order and (fee is None or gtr is None):
        problems.append(
            f"--order: order {args.order} has no sla block (monthly_fee_eur, gtr_hours) "
            "and no --incidents FILE gives them"
        )
    contact = ((order.get("hostops_customer") or {}).get("contact") or {}).get("email")
    if args.send and order and not contact:
        problems.append(f"--send: order {args.order} names no contact email")
    servers = tuple(str(s["hostname"]) for s in order.get("hostops_servers") or [])
    prometheus: Prometheus | None = None
    server_name = ""
    try:
        server_name, address = monitoring_address(args)
        prometheus = credentials(address)
    except UsageError as err:
        problems += err.problems
    if problems or month is None or prometheus is None or fee is None or gtr is None:
        raise UsageError(problems)
    return Request(
        order=order,
        order_id=args.order,
        month=month,
        servers=servers,
        fee=fee,
        gtr=gtr,
        ops=ops,
        contact=contact,
        prometheus=prometheus,
        monitoring_server=server_name,
    )


def monitoring_address(args: argparse.Namespace) -> tuple[str, str]:
    """The monitoring server's name and the address Prometheus answers on."""
    if args.lab:
        from hostops.lab.nspawn import HOST_NAME_RE  # noqa: PLC0415
        from hostops.orders.provision import LAB_MONITORING_SERVER  # noqa: PLC0415

        name = args.monitoring_server or LAB_MONITORING_SERVER
        if not HOST_NAME_RE.match(name):
            raise UsageError(f"--monitoring-server: {name!r} is not a lab host name")
        resolved, _ = lab_hosts([name], name, "--monitoring-server")
        return name, str(resolved[name]["ansible_host"])
    inventory = Inventory.open(inventories_or_default(args.inventory))


    name = args.monitoring_server or settings().monitoring_server
    if name:
        host = inventory.host(name)
        if host is None:
            raise UsageError(f"--monitoring-server: {name!r} is in none of the inventories")
    else:
        hosts = inventory.group_hosts(MONITORING_GROUP)
        if not hosts:
            raise UsageError(
                f"--monitoring-server: required: the inventories have no host in the group "
                f"{MONITORING_GROUP}"
            )
        host = hosts[0]
    hostvars = inventory.host_vars(host)
    address = hostvars.get("hostops_monitor_address") or hostvars.get("ansible_host") or host.name
    return host.name, str(address)


def credentials(address: str) -> Prometheus:
    """Prometheus as the ops user, with the password and CA the playbooks made on this
    controller (``<state>/monitoring``, docs/monitoring.md)."""
    secrets = state_dir() / "monitoring"
    problems = [
        f"--monitoring-server: no {secrets / name}: the monitoring's credentials are made by "
        "playbooks/monitoring-server.yml on this controller"
        for name in ("ops-password", "ca.crt")
        if not (secrets / name).is_file()
    ]
    if problems:
        raise UsageError(problems)
    host = f"[{address}]" if ":" in address else address
    return Prometheus(
        url=f"https://{host}:{PROMETHEUS_PORT}",
        username=OPS_USER,
        password=(secrets / "ops-password").read_text().strip(),
        cafile=secrets / "ca.crt",
    )


# -- The report ------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    request = check(args, now)
    out = sys.stderr if args.json else sys.stdout
    month = request.month
    end = min(month.end, now)
    prometheus = request.prometheus
    print(
        f"sla report {request.order_id} {month}: asking {request.monitoring_server} "
        f"({prometheus.url})",
        file=out,
    )
    step = prometheus.step()
    announcements, notes = read_announcements(state_dir() / "maintenance")
    per_server: dict[str, ServerReport] = {}
    for server in request.servers:
        states = sample_states(prometheus.range(probe_query(server), month.start, end, step))
        down = clip(down_spans(states, step), month.start, end)
        found = server_incidents(server, down, announcements, request.ops)
        result = compute(
            MonthInput(month, request.fee, request.gtr, tuple(f.incident for f in found))
        )
        client = client_report(prometheus, server, month, end, step)
        per_server[server] = ServerReport(
            server, found, result, measured_time(states, step), client
        )
    everything = order_incidents({s: r.found for s, r in per_server.items()})
    order_result = compute(
        MonthInput(month, request.fee, request.gtr, tuple(f.incident for f in everything))
    )
    document = as_document(
        request, now=now, end=end, step=step, per_server=per_server,
        order_result=order_result, notes=notes,
    )  # fmt: skip
    folder = state_dir() / "orders" / request.order_id / "reports" / str(month)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    markdown = render_markdown(document)
    (folder / "report.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    (folder / "report.md").write_text(markdown)
    plot(folder / "availability.png", month, end, per_server, order_result)
    print(f"sla report {request.order_id} {month}: written to {folder}", file=out)
    status = 0
    if args.send:
        assert request.contact is not None  # checked
        delivery = send_report(request, folder, markdown)
        print(f"sla report {delivery.describe()}", file=out)
        status = 1 if delivery.error else 0
    if args.json:
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(markdown)
    return status


def send_report(request: Request, folder: Path, markdown: str) -> notices.Delivery:
    assert request.contact is not None
    notice = notices.Notice(
        to=(request.contact,),
        subject=f"Rapport mensuel {request.month} : commande {request.order_id}",
        body=markdown,
        attachments=(
            ("availability.png", "image/png", (folder / "availability.png").read_bytes()),
            ("report.json", "application/json", (folder / "report.json").read_bytes()),
        ),
    )
    return notices.deliver(notice, folder / "report.eml")
