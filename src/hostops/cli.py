"""The ``hostops`` command: one sub-command per operator job.

Each command group lives in its own module exposing ``register(subparsers)``; the
function it sets as ``func`` returns the exit status. Errors for people are raised
as :class:`hostops.errors.HostopsError` and printed here, one line per problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hostops import __version__
from hostops.errors import HostopsError

COMMAND_MODULES = (
    "hostops.lab_cli",
    "hostops.backup_cli",
    "hostops.order_cli",
    "hostops.maintenance_cli",
    "hostops.patch_cli",
    "hostops.request_cli",
    "hostops.updates_cli",
    "hostops.monitor_cli",
    "hostops.sla_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostops",
        description="Alteo hosting automation: lab, orders, requests, patching, backups.",
    )
    parser.add_argument("--version", action="version", version=f"hostops {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = __import__(name, fromlist=["register"])
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except HostopsError as err:
        for line in str(err).splitlines() or [err.__class__.__name__]:
            print(f"hostops: {line}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("hostops: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
