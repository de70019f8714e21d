"""``hostops patch schedule | unschedule``: routine patch runs on a systemd timer (§4.1.1).

Patching is routine (contract §4.1.1) and runs on working days and hours (§4.1.3). On the
ops controller, ``schedule`` writes two systemd units for one inventory group:

* ``hostops-patch-<group>.service``: a oneshot that runs ``hostops patch run --limit
  <group> --mail-report`` with the inventories, the order, the contacts and the batch
  sizes given here, and the hostops environment of the moment it was scheduled (state
  directory, configuration, SMTP relay); the run writes its report in the state
  directory and mails each customer contact the part about its servers;
* ``hostops-patch-<group>.timer``: ``OnCalendar=<days> *-*-* HH:MM:00 Europe/Paris``.

The time must fall inside the window on every day named (09:00 to 16:00, before 12:00
on Fridays; no weekend), else exit 2 before anything is written. A public holiday, or the
afternoon before one, still comes up on the calendar: the run itself then refuses as any
run outside the window does (exit 1, nothing changed), and the unit's failure shows it.

``--unit-dir`` (default ``/etc/systemd/system``) is where the units go; with the default,
systemd is reloaded and the timer enabled and started (``--no-enable`` skips that).
``unschedule`` stops and removes both units.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import time
from pathlib import Path
from typing import Any, Final

from hostops.core.errors import HostopsError, UsageError
from hostops.core.settings import inventories_or_default
from hostops.core.targets import Inventory
from hostops.maintenance import notices
from hostops.module_utils.maintenance_window import DEFAULT_CONFIG
from hostops.module_utils.problems import InputProblems
from hostops.patching.run import parse_serial

DEFAULT_UNIT_DIR: Final = Path("/etc/systemd/system")
GROUP: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FRIDAY, _SATURDAY = 4, 5
TIMEOUT: Final = "4h"  # a oneshot has no start timeout by default (lab notes)
# the hostops environment a scheduled run keeps (never anything else of the caller's)
ENVIRONMENT: Final = (
    "HOSTOPS_STATE_DIR",
    "HOSTOPS_CONFIG",
    "HOSTOPS_SMTP_HOST",
    "HOSTOPS_SMTP_PORT",
    "HOSTOPS_MAIL_FROM",
    "HOSTOPS_LAB_ID",
    "HOSTOPS_LAB_SUBNET",
    "HOSTOPS_ANSIBLE_STRATEGY",
    "HOSTOPS_ROOT",
)
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schedule = verbs.add_parser(
        "schedule",
        help="run 'patch run' for an inventory group on a systemd timer, in the window",
        description="Installs hostops-patch-GROUP.timer and .service on this controller: "
        "the service runs 'hostops patch run --limit GROUP --mail-report' at --at on --days "
        "(Paris time), which must fall inside the maintenance window.",
    )
    schedule.add_argument("--group", required=True, help="the inventory group to patch")
    schedule.add_argument("--at", required=True, metavar="HH:MM", help="start, Paris time")
    schedule.add_argument(
        "--days",
        default="Mon-Fri",
        help="working days, a range or a list: Mon-Fri (default), Tue,Thu, Mon-Wed",
    )
    schedule.add_argument(
        "--inventory",
        type=Path,
        action="append",
        default=[],
        metavar="INV",
        help="inventory (repeatable; default: the configured ones)",
    )
    schedule.add_argument("--order", type=Path, metavar="FILE", help="the customer's order")
    schedule.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="EMAIL",
        help="customer contact mailed the report (repeatable; also read from the inventory)",
    )
    schedule.add_argument("--serial", metavar="N[,N...]", help="batch sizes (patch run's)")
    schedule.add_argument(
        "--unit-dir",
        type=Path,
        default=DEFAULT_UNIT_DIR,
        metavar="DIR",
        help=f"where the units are written (default {DEFAULT_UNIT_DIR})",
    )
    schedule.add_argument(
        "--no-enable",
        action="store_true",
        help="write the units only (default: with the default --unit-dir, reload systemd "
        "and enable and start the timer)",
    )
    schedule.set_defaults(func=cmd_schedule)

    unschedule = verbs.add_parser(
        "unschedule", help="stop and remove a group's patch timer and service"
    )
    unschedule.add_argument("--group", required=True, help="the inventory group")
    unschedule.add_argument(
        "--unit-dir", type=Path, default=DEFAULT_UNIT_DIR, metavar="DIR", help="as for schedule"
    )
    unschedule.set_defaults(func=cmd_unschedule)


# -- checks ---------------------------------------------------------------------------


def parse_days(text: str) -> list[int]:
    """``Mon-Fri`` -> [0..4]; ``Tue,Thu`` -> [1, 3]; UsageError when malformed."""
    names = {name.lower(): index for index, name in enumerate(DAYS)}
    days: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        start, end = names.get(first.lower()), names.get((last if dash else first).lower())
        if start is None or end is None or end < start:
            raise UsageError(
                f"--days: {text!r} is not a list or range of days (e.g. Mon-Fri, Tue,Thu)"
            )
        days.update(range(start, end + 1))
    return sorted(days)


def parse_time(text: str) -> time:
    match = re.fullmatch(r"([01][0-9]|2[0-3]):([0-5][0-9])", text)
    if not match:
        raise UsageError(f"--at: {text!r} is not a time HH:MM (24 h, Paris time)")
    return time(int(match.group(1)), int(match.group(2)))


def window_problems(start: time, days: Sequence[int], at: str, days_text: str) -> list[str]:
    """Why a run starting at ``start`` on ``days`` would fall outside the window."""
    config = DEFAULT_CONFIG
    problems = []
    weekend = [DAYS[day] for day in days if day >= _SATURDAY]
    if weekend:
        problems.append(
            f"--days: {days_text!r} names {', '.join(weekend)}: the maintenance window is "
            "closed at weekends (contract §4.1.3)"
        )
    if not config.open_time <= start < config.close_time:
        problems.append(
            f"--at: {at!r} is outside the maintenance window "
            f"({config.open_time:%H:%M} to {config.close_time:%H:%M}, Paris time)"
        )
    elif _FRIDAY in days and start >= config.afternoon_start:
        problems.append(
            f"--at: {at!r} on Friday ({days_text!r}) is outside the maintenance window "
            f"(closed from {config.afternoon_start:%H:%M} on Friday afternoons)"
        )
    return problems


def group_problems(group: str, inventories: Sequence[Path]) -> list[str]:
    if not GROUP.fullmatch(group):
        return [f"--group: {group!r} is not an inventory group name (A-Z, a-z, 0-9, _)"]
    if not inventories:
        return ["--inventory: none given and none configured"]
    try:
        inventory = Inventory.open(inventories)
    except UsageError as error:
        return list(error.problems)
    if not inventory.group_hosts(group):
        return [f"--group: {group!r} is not a group with hosts in the inventory"]
    return []


# -- the units ------------------------------------------------------------------------


def unit_names(group: str) -> tuple[str, str]:
    return f"hostops-patch-{group}.service", f"hostops-patch-{group}.timer"


def quote(arg: str) -> str:
    """One ExecStart argument, quoted for systemd (specifiers and variables escaped)."""
    if _PLAIN.fullmatch(arg):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


def on_calendar(start: time, days: Sequence[int]) -> str:
    return f"{','.join(DAYS[day] for day in days)} *-*-* {start:%H:%M}:00 {DEFAULT_CONFIG.timezone}"


def command(args: argparse.Namespace, inventories: Sequence[Path]) -> list[str]:
    """The patch run the service starts."""
    argv = [str(Path(sys.argv[0]).resolve()) if sys.argv[0] else "hostops", "patch", "run"]
    if not Path(argv[0]).name.startswith("hostops"):
        argv[0] = str(Path(sys.executable).parent / "hostops")
    for inventory in inventories:
        argv += ["--inventory", str(inventory.resolve())]
    argv += ["--limit", args.group, "--mail-report"]
    if args.order is not None:
        argv += ["--order", str(args.order.resolve())]
    for contact in args.contact:
        argv += ["--contact", contact]
    if args.serial:
        argv += ["--serial", args.serial]
    return argv


def service_unit(group: str, argv: Sequence[str], environment: Mapping[str, str]) -> str:
    path = os.pathsep.join([str(Path(argv[0]).parent), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
    lines = [
        "[Unit]",
        f"Description=hostops patch run of group {group} (contract §4.1.1, §4.1.3)",
        "Documentation=file:///usr/share/doc/hostops/README.md",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"TimeoutStartSec={TIMEOUT}",
        f"Environment={quote('PATH=' + path)}",
    ]
    lines += [f"Environment={quote(f'{name}={value}')}" for name, value in environment.items()]
    lines.append("ExecStart=" + " ".join(quote(arg) for arg in argv))
    return "\n".join(lines) + "\n"


def timer_unit(group: str, calendar: str) -> str:
    return (
        "\n".join(
            [
                "[Unit]",
                f"Description=hostops patch run of group {group}, in the maintenance window",
                "",
                "[Timer]",
                f"OnCalendar={calendar}",
                # a run missed while the controller was off is not caught up later: it could
                # fall outside the window (it would refuse anyway)
                "Persistent=false",
                "AccuracySec=1min",
                "",
                "[Install]",
                "WantedBy=timers.target",
            ]
        )
        + "\n"
    )


def _systemctl(*args: str) -> None:
    if not Path("/run/systemd/system").is_dir():
        raise HostopsError(
            "systemd is not running on this machine: the units are written but not enabled "
            f"(run 'systemctl {' '.join(args)}' where systemd runs, or use --no-enable)"
        )
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HostopsError(f"systemctl {' '.join(args)}: {proc.stderr.strip()}")


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.chmod(0o644)
    temporary.replace(path)


# -- the commands ---------------------------------------------------------------------


def cmd_schedule(args: argparse.Namespace) -> int:
    problems: list[str] = []
    start: time | None = None
    days: list[int] = []
    try:
        start = parse_time(args.at)
    except UsageError as err:
        problems += err.problems
    try:
        days = parse_days(args.days)
    except UsageError as err:
        problems += err.problems
    if start is not None and days:
        problems += window_problems(start, days, args.at, args.days)
    problems += notices.check_contacts(args.contact)
    if args.serial is not None:

        try:
            parse_serial(args.serial)
        except UsageError as err:
            problems += err.problems
    if args.order is not None and not args.order.is_file():
        problems.append(f"--order: {args.order} is not a file")
    elif args.order is not None:  # the timer's runs read it: a bad order is refused now
        from hostops.orders.order import load_order  # noqa: PLC0415 - only with --order

        try:
            load_order(args.order)
        except InputProblems as err:
            problems += [f"--order: {problem}" for problem in err.problems]
    if not args.unit_dir.is_dir():
        problems.append(f"--unit-dir: {args.unit_dir} is not a directory")
    if problems:
        raise UsageError(problems)
    inventories = inventories_or_default(args.inventory)
    problems = group_problems(args.group, inventories)
    if problems:
        raise UsageError(problems)
    assert start is not None
    argv = command(args, inventories)
    environment = {name: os.environ[name] for name in ENVIRONMENT if os.environ.get(name)}
    service, timer = unit_names(args.group)
    calendar = on_calendar(start, days)
    write_atomically(args.unit_dir / service, service_unit(args.group, argv, environment))
    write_atomically(args.unit_dir / timer, timer_unit(args.group, calendar))
    print(f"wrote {args.unit_dir / service} and {args.unit_dir / timer}")
    print(f"OnCalendar={calendar}")
    print("runs: " + " ".join(argv))
    if args.no_enable or args.unit_dir != DEFAULT_UNIT_DIR:
        print(
            "not enabled (enable with: systemctl daemon-reload && systemctl enable --now "
            + timer
            + ")"
        )
        return 0
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", timer)
    print(f"{timer} enabled and started")
    return 0


def cmd_unschedule(args: argparse.Namespace) -> int:
    if not GROUP.fullmatch(args.group):
        raise UsageError(
            f"--group: {args.group!r} is not an inventory group name (A-Z, a-z, 0-9, _)"
        )
    service, timer = unit_names(args.group)
    paths = [args.unit_dir / timer, args.unit_dir / service]
    if not any(path.exists() for path in paths):
        raise UsageError(f"--group: no patch schedule for {args.group!r} in {args.unit_dir}")
    if args.unit_dir == DEFAULT_UNIT_DIR and Path("/run/systemd/system").is_dir():
        _systemctl("disable", "--now", timer)
    for path in paths:
        path.unlink(missing_ok=True)
    if args.unit_dir == DEFAULT_UNIT_DIR and Path("/run/systemd/system").is_dir():
        _systemctl("daemon-reload")
    print(f"removed {paths[0]} and {paths[1]}")
    return 0


# -- the report mailed after a scheduled run --------------------------------------------


def report_notice(
    email: str, hosts: Sequence[str], summary: Mapping[str, Any]
) -> notices.Notice:
    """The run's report for one customer: only its servers."""
    run = summary["run"]
    rows = [row for row in summary["hosts"] if row["host"] in hosts]
    lines = [
        "Bonjour,",
        "",
        "Voici le compte rendu des mises à jour de vos serveurs (maintenance de routine,",
        "conditions particulières, article 4.1).",
        "",
        f"Début : {run['started_at']} ; fin : {run.get('finished_at')}",
        "",
    ]
    for row in rows:
        lines.append(f"Serveur {row['host']} : {_status_fr(row['status'])}")
        for entry in row["applied"]:
            kind = " (mise à jour majeure approuvée)" if entry.get("approved_major") else ""
            lines.append(
                f"  appliquée : {entry['name']} {entry.get('from')} -> {entry['to']}{kind}"
            )
        for entry in row["held_major"]:
            lines.append(
                f"  majeure en attente de votre accord : {entry['name']} "
                f"{entry.get('from')} -> {entry['to']}"
            )
        for entry in row["failed"]:
            lines.append(f"  échec : {entry['name']} ({entry.get('msg', '')})")
        if row.get("error"):
            lines.append(f"  contrôle en échec : {row['error']}")
    refusals = [
        m for m in summary.get("majors", []) if m["kind"] == "refused" and m["host"] in hosts
    ]
    if refusals:
        lines += ["", "Mises à jour majeures que vous avez refusées (le client en assume les"]
        lines.append("conséquences, article 4.1.3) :")
        lines += [f"  {m['host']} : {m['package']} (réf. {m['reference']})" for m in refusals]
    lines += [
        "",
        "Les mises à jour majeures sont planifiées avec vous : répondez à ce message pour",
        "donner votre accord ou ouvrez un ticket.",
        "",
        "L'équipe infogérance Alixans",
    ]
    subject = f"Compte rendu des mises à jour du {str(run['started_at'])[:10]}"
    return notices.Notice((email,), subject, "\n".join(lines) + "\n")


def _status_fr(status: str) -> str:
    return {"ok": "à jour", "failed": "ÉCHEC", "not run": "non traité (arrêt du lot)"}.get(
        status, status
    )


def mail_reports(contacts: Mapping[str, Sequence[str]], run_dir: Path) -> list[dict[str, object]]:
    """Mail each contact the run's report on its servers; the .eml files stay with the run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    deliveries = []
    for index, (email, hosts) in enumerate(sorted(contacts.items()), start=1):
        notice = report_notice(email, hosts, summary)
        delivery = notices.deliver(notice, run_dir / f"report-mail-{index}.eml")
        print(f"report {delivery.describe()}")
        deliveries.append(delivery.as_dict())
    (run_dir / "report-mails.json").write_text(json.dumps(deliveries, indent=2) + "\n")
    return deliveries
