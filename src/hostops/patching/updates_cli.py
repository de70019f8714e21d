"""``hostops updates`` and ``hostops window``: the contract's patching rules from the shell.

``hostops updates classify --package P --from OLD --to NEW`` prints ``minor``, ``major``
or ``unchanged`` (§4.1.3: minor updates are applied by routine, majors are planned
with the client). ``hostops window check [--at ISO8601]`` says whether routine
maintenance may run now (or at ``--at``): exit 0 when open, 1 when closed.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import Final

from hostops.core.errors import UsageError
from hostops.module_utils.maintenance_window import DEFAULT_CONFIG, check_window, parse_at
from hostops.module_utils.versions import classify_update, parse_version


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``updates`` and ``window`` command groups to the ``hostops`` parser."""
    updates = subparsers.add_parser("updates", help="classify package updates (§4.1.3)")
    updates_commands = updates.add_subparsers(
        dest="updates_command", metavar="COMMAND", required=True
    )
    classify = updates_commands.add_parser(
        "classify",
        help="print minor, major or unchanged for one package's version change",
        description="Minor: the version changes at the 3rd digit only (or in the Debian "
        "revision); major: at the epoch, 1st or 2nd digit.",
    )
    classify.add_argument("--package", required=True, metavar="P", help="the package's name")
    classify.add_argument(
        "--from", dest="old", required=True, metavar="OLD", help="the installed Debian version"
    )
    classify.add_argument(
        "--to", dest="new", required=True, metavar="NEW", help="the candidate Debian version"
    )
    classify.set_defaults(func=run_classify)

    window = subparsers.add_parser("window", help="the maintenance window (§4.1.3)")
    window_commands = window.add_subparsers(dest="window_command", metavar="COMMAND", required=True)
    check = window_commands.add_parser(
        "check",
        help="exit 0 if routine maintenance may run now, 1 if not",
        description="Working days 09:00-16:00 Europe/Paris; closed at weekends, on public "
        "holidays, on Friday afternoons and on afternoons of the eve of a public holiday.",
    )
    check.add_argument(
        "--at", metavar="ISO8601", help="the moment to check, with a UTC offset or Z (default: now)"
    )
    check.add_argument(
        "--json", action="store_true", help="the answer as JSON (the exit status is the same)"
    )
    check.set_defaults(func=run_window_check)


# Debian policy §5.6.1: package names.
PACKAGE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def run_classify(args: argparse.Namespace) -> int:
    """Print the update's class; both versions are checked before anything is printed."""
    problems = []
    if not PACKAGE_NAME.fullmatch(args.package):
        problems.append(
            f"--package: {args.package!r} is not a Debian package name (two or more of a-z, "
            "0-9, '+', '-', '.', a letter or digit first)"
        )
    for option, value in (("--from", args.old), ("--to", args.new)):
        try:
            parse_version(value)
        except ValueError as err:
            problems.append(f"{option}: {err} (package {args.package})")
    if problems:
        raise UsageError(problems)
    print(classify_update(args.old, args.new))
    return 0


def run_window_check(args: argparse.Namespace) -> int:
    """Print whether the window is open; the exit status says it too (0 open, 1 closed)."""
    if args.at is None:
        at = datetime.now(UTC)
    else:
        try:
            at = parse_at(args.at)
        except ValueError as err:
            raise UsageError(f"--at: {err}") from err
    status = check_window(at, DEFAULT_CONFIG)
    zone = DEFAULT_CONFIG.timezone
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "open": status.open,
                    "reason": status.reason,
                    "timezone": str(zone),
                    "local_time": status.local_time.isoformat(timespec="minutes"),
                    "closes_at": status.closes_at.isoformat(timespec="minutes")
                    if status.closes_at
                    else None,
                    "next_open": status.next_open.isoformat(timespec="minutes")
                    if status.next_open
                    else None,
                },
                indent=2,
            )
        )
        return 0 if status.open else 1
    if status.open:
        assert status.closes_at is not None
        print(
            f"open ({zone} {status.local_time:%Y-%m-%d %H:%M}, closes at {status.closes_at:%H:%M})"
        )
        return 0
    assert status.next_open is not None
    print(f"closed: {status.reason}; next opening: {status.next_open:%Y-%m-%d %H:%M} ({zone})")
    return 1
