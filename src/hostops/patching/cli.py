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
import sys
from datetime import UTC, datetime
from pathlib import Path

from hostops.core.errors import HostopsError, UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.maintenance import notices
from hostops.module_utils.maintenance_window import (
    DEFAULT_CONFIG,
    check_window,
    parse_at,
)
from hostops.patching import agreements_cli as patch_agreements_cli
from hostops.patching import schedule as patch_schedule
from hostops.patching.run import (
    check_max_fail,
    describe_window,
    execute,
    finish,
    new_patch_run_dir,
    parse_serial,
    run_record,
    send_emergency_notices,
)
from hostops.patching.targets import CONTACT_VAR, resolve_targets


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


# -- the commands ---------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    serial = parse_serial(args.serial)
    check_max_fail(args.max_fail_percentage)
    targets = resolve_targets(args)
    as_json = getattr(args, "json", False)
    # with --json, stdout carries the JSON document only; the progress goes to stderr
    out = sys.stderr if as_json else sys.stdout
    moment = datetime.now(UTC)
    status = check_window(moment, DEFAULT_CONFIG)
    print(f"patch plan for {len(targets.hosts)} host(s): check mode, nothing is changed", file=out)
    print(f"window now: {describe_window(status)}", file=out)
    run_dir = new_patch_run_dir("plan")
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
        check_max_fail(args.max_fail_percentage)
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
    run_dir = new_patch_run_dir("run")
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
