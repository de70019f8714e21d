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

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun
from hostops.core.settings import inventories_or_default, new_run_dir
from hostops.orders import fleet
from hostops.patching.targets import Targets, inventory_targets, lab_targets
from hostops.security.watch import build_report, mail_reports, render_text


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
    run_dir = new_run_dir("security-reports")
    reports_dir = run_dir / "hosts"
    reports_dir.mkdir(mode=0o700)
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


