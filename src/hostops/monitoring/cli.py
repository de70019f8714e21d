"""``hostops monitor register | deregister HOST``: watch a server by its managed level, or stop.

``register`` reads the server's order and runs ``playbooks/monitor-register.yml``: the
server gets the probes of its managed level (basic: ping; supervision, plesk, custom:
also node metrics, through the monitoring agent it installs, and the order's HTTP and
TCP checks), in a targets file of its own on the monitoring server, labelled with the
order, customer, level and the contact to warn. ``deregister`` runs
``playbooks/monitor-deregister.yml``, which removes that file: the server keeps running
but is no longer watched (the contract's isolation from monitoring, §4.1.2).

The monitoring server is the inventory's group ``monitoring_servers``, or ``--server``.
Every argument is checked, and every host resolved, before any host is touched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.monitoring.registration import (
    MONITORING_GROUP,
    execute,
    plan_deregister,
    plan_register,
)
from hostops.orders.order import load_order


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitor = subparsers.add_parser(
        "monitor", help="register servers with monitoring by managed level, or isolate them"
    )
    verbs = monitor.add_subparsers(dest="monitor_command", metavar="VERB", required=True)

    reg = verbs.add_parser(
        "register", help="watch a server of an order (probes by its managed level)"
    )
    _add_host(reg, "the server's host name on the order")
    reg.add_argument("--order", type=Path, required=True, metavar="FILE", help="the order file")
    _add_common(reg)
    reg.set_defaults(func=cmd_register)

    dereg = verbs.add_parser(
        "deregister",
        help="stop watching a server; it keeps running (isolation from monitoring)",
    )
    _add_host(dereg, "the server's name, as registered")
    _add_common(dereg)
    dereg.set_defaults(func=cmd_deregister)


def _add_host(parser: argparse.ArgumentParser, what: str) -> None:
    """The server as HOST or --host HOST (the name other commands use)."""
    parser.add_argument("host", nargs="?", metavar="HOST", help=what)
    parser.add_argument("--host", dest="host_option", metavar="HOST", help="the same as HOST")


def _host(args: argparse.Namespace) -> str:
    given: set[str] = {
        str(h) for h in (args.host, getattr(args, "host_option", None)) if h is not None
    }
    if not given:
        raise UsageError("HOST: required (or --host HOST)")
    if len(given) > 1:
        raise UsageError(f"--host: {args.host_option!r} differs from HOST {args.host!r}")
    return given.pop()


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_inventory_or_lab(
        parser,
        inventory_help="inventory holding the server and the monitoring server (repeatable)",
        lab_help="the hosts are lab hosts",
    )
    parser.add_argument(
        "--monitoring-server",
        "--server",
        dest="server",
        metavar="NAME",
        help=f"the monitoring server (default: the inventory's group {MONITORING_GROUP})",
    )
    parser.add_argument("--check", action="store_true", help="predict the changes, change nothing")


def cmd_register(args: argparse.Namespace) -> int:
    host = _host(args)
    order = load_order(args.order)
    plan = plan_register(order, host, inventories=args.inventory, lab=args.lab, server=args.server)
    return execute(plan, check=args.check)


def cmd_deregister(args: argparse.Namespace) -> int:
    host = _host(args)
    plan = plan_deregister(host, inventories=args.inventory, lab=args.lab, server=args.server)
    return execute(plan, check=args.check)
