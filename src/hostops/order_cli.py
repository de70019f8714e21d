"""``hostops order validate | apply``: a new order becomes provisioned servers."""

from __future__ import annotations

import argparse
from pathlib import Path

from hostops.cli_options import add_inventory_or_lab
from hostops.order import accept_order
from hostops.provision import apply_order


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    order = subparsers.add_parser("order", help="validate and provision orders (bons de commande)")
    verbs = order.add_subparsers(dest="order_command", metavar="VERB", required=True)

    validate = verbs.add_parser("validate", help="check an order file; exit 2 on any problem")
    validate.add_argument("file", type=Path, metavar="FILE")
    validate.set_defaults(func=cmd_validate)

    apply = verbs.add_parser(
        "apply", help="provision an order's servers and write the delivery note"
    )
    apply.add_argument("file", type=Path, metavar="FILE")
    add_inventory_or_lab(
        apply,
        inventory_help="inventory holding the order's servers (repeatable)",
        lab_help="map the servers onto lab hosts",
    )
    apply.add_argument("--check", action="store_true", help="predict the changes, change nothing")
    apply.add_argument("--limit", metavar="HOST", help="only this server of the order")
    apply.add_argument(
        "--monitoring-server",
        metavar="NAME",
        help="the monitoring server (default: the inventory's group monitoring_servers; "
        "required with --lab for managed levels above none)",
    )
    apply.set_defaults(func=cmd_apply)


def cmd_validate(args: argparse.Namespace) -> int:
    order = accept_order(args.file)
    print(
        f"{args.file}: valid order {order.id} ({order.service}, {order.os}, "
        f"managed level {order.managed_level}, {len(order.servers)} server(s))"
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    order = accept_order(args.file)
    return apply_order(
        order,
        lab=args.lab,
        inventories=args.inventory,
        check=args.check,
        limit=args.limit,
        monitoring_server=args.monitoring_server,
    )
