"""``hostops maintenance announce``: the customer email for planned (or emergency) work.

The options are checked here (the start at least 8 calendar days ahead, §5.5, unless
``--emergency``; the duration; the contacts); the notice itself is built, kept and sent by
:mod:`hostops.maintenance.notices`.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta

from hostops.core.errors import UsageError
from hostops.core.settings import new_run_dir
from hostops.maintenance import notices
from hostops.maintenance.notices import (
    MAX_DURATION_MINUTES,
    NOTICE_DAYS,
    PARIS,
    calendar_days_until,
    check_contacts,
    check_reason,
    deliver,
    planned_notice,
)
from hostops.module_utils.maintenance_window import DEFAULT_CONFIG, check_window, parse_at

# A host as the notice names it (an inventory name or an FQDN).
HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")

# -- the command ----------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops maintenance announce``."""
    maintenance = subparsers.add_parser(
        "maintenance", help="announce planned maintenance to customers (§5.5)"
    )
    verbs = maintenance.add_subparsers(dest="maintenance_command", metavar="VERB", required=True)
    announce = verbs.add_parser(
        "announce",
        help="build (and send) the customer email for planned work",
        description="Planned work is announced at least 8 calendar days before its start "
        "(contract §5.5), with its date, start time (Paris) and duration; --emergency "
        "allows shorter notice. The email is kept as an .eml file and sent when "
        "HOSTOPS_SMTP_HOST names an SMTP relay.",
    )
    announce.add_argument(
        "--hosts",
        nargs="+",
        required=True,
        metavar="HOST",
        help="the servers concerned (space or comma separated)",
    )
    announce.add_argument(
        "--start", required=True, metavar="ISO8601", help="start, with a UTC offset or Z"
    )
    announce.add_argument("--duration", required=True, metavar="MINUTES", help="expected duration")
    announce.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="EMAIL",
        help="the customer contact to write to (repeatable; required)",
    )
    announce.add_argument(
        "--emergency", action="store_true", help="urgent work: less than 8 days' notice"
    )
    announce.add_argument("--reason", metavar="TEXT", help="why (required with --emergency)")
    announce.set_defaults(func=cmd_announce)


def cmd_announce(args: argparse.Namespace) -> int:
    hosts = [name for value in args.hosts for name in value.split(",") if name.strip()]
    problems = check_contacts(args.contact)
    if not args.contact:
        problems.append("--contact: required: the customer contact to write to")
    if not hosts:
        problems.append("--hosts: no host named")
    problems += [
        f"--hosts: {name!r} is not a host name" for name in hosts if not HOST_NAME.fullmatch(name)
    ]
    duration = int(args.duration) if re.fullmatch(r"[0-9]{1,6}", args.duration) else 0
    if not 0 < duration <= MAX_DURATION_MINUTES:
        problems.append(f"--duration: {args.duration} is not 1..{MAX_DURATION_MINUTES} minutes")
    if args.emergency and not (args.reason or "").strip():
        problems.append("--reason: required with --emergency (the client is told why)")
    problems += check_reason(args.reason, "--reason", required=False)[1]
    reference = notices.now()
    try:
        start = parse_at(args.start)
    except ValueError as err:
        problems.append(f"--start: {err}")
    else:
        days = calendar_days_until(start, reference)
        if start <= reference:
            problems.append(f"--start: {args.start} is in the past")
        elif days < NOTICE_DAYS and not args.emergency:
            problems.append(
                f"--start: {args.start} is {days} calendar day(s) away; planned work is "
                f"announced at least {NOTICE_DAYS} calendar days before (contract §5.5): "
                f"start on {(reference.astimezone(PARIS) + timedelta(days=NOTICE_DAYS)):%Y-%m-%d} "
                "or later, or use --emergency with --reason"
            )
    if problems:
        raise UsageError(problems)

    notice = planned_notice(
        to=args.contact,
        hosts=hosts,
        start=start,
        duration_minutes=duration,
        emergency=args.emergency,
        reason=(args.reason or "").strip() or None,
    )
    folder = new_run_dir("maintenance", moment=reference)
    delivery = deliver(notice, folder / "announce.eml")
    window = check_window(start, DEFAULT_CONFIG)
    record = {
        "announced_at": reference.astimezone(PARIS).isoformat(timespec="seconds"),
        "start": start.astimezone(PARIS).isoformat(timespec="minutes"),
        "duration_minutes": duration,
        "hosts": hosts,
        "emergency": args.emergency,
        "reason": (args.reason or "").strip() or None,
        "notice_days": calendar_days_until(start, reference),
        "start_in_window": window.open,
        "notice": delivery.as_dict(),
    }
    (folder / "announce.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(notice.subject)
    print(f"notice {delivery.describe()}")
    if not window.open:
        print(
            f"note: the start is outside the maintenance window ({window.reason}); "
            "the contract runs maintenance on working days and hours"
        )
    return 1 if delivery.error else 0
