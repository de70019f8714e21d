"""``hostops patch approve | refuse``: the client's word on a major update (§4.1.3).

Both check everything before writing (exit 2 naming the option and the value): the host
must be one of the inventory's (or a lab host with ``--lab``), the package a Debian
package name, the version a Debian version, the reference not empty. Nothing on any
server changes: the next ``hostops patch run`` in the window applies the approval.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.settings import inventories_or_default
from hostops.patching import agreements as patch_agreements
from hostops.patching.targets import inventory_targets, lab_targets


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    approve = verbs.add_parser(
        "approve",
        help="record the client's agreement to a major update (applied by the next run)",
        description="Records the client's agreement to one major update of one package on "
        "one server (contract §4.1.3: majors are planned with the client). The next patch "
        "run inside the window applies exactly that update, to --version or the archive's "
        "candidate, with the usual health checks; the approval then expires.",
    )
    _add_arguments(approve)
    approve.add_argument(
        "--version",
        metavar="V",
        help="the Debian version agreed to (default: the archive's candidate at the run)",
    )
    approve.set_defaults(func=cmd_approve, decision=patch_agreements.APPROVED)
    refuse = verbs.add_parser(
        "refuse",
        help="record the client's refusal of a major update (it stays held)",
        description="Records that the client refuses a major update: it stays held, and "
        "plans and reports show the refusal (a client refusing a fix carries the "
        "consequences, §4.1.3).",
    )
    _add_arguments(refuse)
    refuse.set_defaults(func=cmd_approve, decision=patch_agreements.REFUSED, version=None)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_inventory_or_lab(
        parser,
        inventory_help="inventory holding the server (repeatable; default: the configured one)",
        lab_help="the server is a lab host",
    )
    parser.add_argument("--host", required=True, metavar="NAME", help="the server")
    parser.add_argument("--package", required=True, metavar="P", help="the Debian package")
    parser.add_argument(
        "--reference",
        required=True,
        metavar="TEXT",
        help="the client's agreement or refusal: ticket number, email, quote",
    )
    parser.add_argument(
        "--by", metavar="NAME", help="who records it (default: $SUDO_USER or $USER)"
    )
    parser.add_argument(
        "--at",
        metavar="ISO8601",
        help=argparse.SUPPRESS,  # the moment recorded, for tests of ages
    )


def _known_host(args: argparse.Namespace) -> str:
    """The host as patch runs name it; UsageError when no such server is known."""
    host = str(args.host).strip()
    if not host:
        raise UsageError(f"--host: {args.host!r} is empty")
    if getattr(args, "lab", False):
        targets = lab_targets([host], None, "--host")
        return str(targets.hosts[0])
    targets = inventory_targets(inventories_or_default(args.inventory), None)
    if host not in targets.hosts:
        raise UsageError(f"--host: {host!r} is not in the inventory")
    return host


def cmd_approve(args: argparse.Namespace) -> int:
    problems = patch_agreements.package_problems(args.package)
    problems += patch_agreements.version_problems(args.version)
    problems += patch_agreements.reference_problems(args.reference)
    if args.by is not None and not args.by.strip():
        problems.append(f"--by: {args.by!r} is empty")
    at = None
    if args.at is not None:
        try:
            at = datetime.fromisoformat(args.at.replace("Z", "+00:00"))
            if at.tzinfo is None:
                raise ValueError("no UTC offset")
        except ValueError as err:
            problems.append(f"--at: {args.at!r} is not an ISO 8601 moment with an offset ({err})")
    if problems:
        raise UsageError(problems)
    host = _known_host(args)
    entry = patch_agreements.record(
        decision=args.decision,
        host=host,
        package=args.package,
        version=args.version,
        reference=args.reference,
        by=patch_agreements.operator(args.by),
        at=at.astimezone(UTC) if at else None,
    )
    if args.decision == patch_agreements.APPROVED:
        target = args.version or "the archive's candidate"
        print(
            f"{host}: the major update of {args.package} to {target} is approved "
            f"(ref {entry['reference']!r}, by {entry['by']}, {entry['at']}); the next patch "
            "run inside the window applies it"
        )
    else:
        print(
            f"{host}: the client refuses the major update of {args.package} "
            f"(ref {entry['reference']!r}, by {entry['by']}, {entry['at']}); it stays held"
        )
    print(f"recorded in {patch_agreements.path()}")
    return 0
