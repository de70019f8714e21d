"""``hostops order validate | apply | list | show`` and ``hostops fleet``: a new order
becomes provisioned servers, and the state directory says what was delivered."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.settings import state_dir
from hostops.orders import fleet
from hostops.orders.order import accept_order
from hostops.orders.provision import apply_order


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    order = subparsers.add_parser("order", help="validate and provision orders (bons de commande)")
    verbs = order.add_subparsers(dest="order_command", metavar="VERB", required=True)

    validate = verbs.add_parser("validate", help="check an order file; exit 2 on any problem")
    validate.add_argument("file", type=Path, metavar="FILE")
    validate.add_argument("--json", action="store_true", help="the verdict as JSON on stdout")
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
    apply.add_argument(
        "--json",
        action="store_true",
        help="the run's result as JSON on stdout (progress goes to stderr)",
    )
    apply.add_argument(
        "--no-send",
        dest="send",
        action="store_false",
        help="do not email the delivery note to the customer's contact (it is still written)",
    )
    apply.set_defaults(func=cmd_apply)

    extra = verbs.add_parser(
        "vars",
        help="a valid order as the extra variables of playbooks/provision.yml (for AWX)",
    )
    extra.add_argument("file", type=Path, metavar="FILE")
    extra.add_argument("--json", action="store_true", help="as JSON (default: YAML)")
    extra.set_defaults(func=cmd_vars)

    listing = verbs.add_parser("list", help="the orders this state directory knows")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=cmd_list)

    show = verbs.add_parser(
        "show", help="one order: servers, addresses, level, delivery note, runs"
    )
    show.add_argument("order", metavar="ORDER", help="the order number, e.g. BDC-2027-0103")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(func=cmd_show)

    fleet_parser = subparsers.add_parser(
        "fleet", help="the delivered servers by customer and managed level"
    )
    fleet_parser.add_argument("--json", action="store_true", help="as JSON")
    fleet_parser.set_defaults(func=cmd_fleet)


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_validate(args: argparse.Namespace) -> int:
    if args.json:
        try:
            order = accept_order(args.file)
        except UsageError as err:
            _dump({"file": str(args.file), "valid": False, "problems": str(err).splitlines()})
            raise
        _dump(
            {
                "file": str(args.file),
                "valid": True,
                "order": order.id,
                "service": order.service,
                "os": order.os,
                "managed_level": order.managed_level,
                "servers": [s.hostname for s in order.servers],
            }
        )
        return 0
    order = accept_order(args.file)
    print(
        f"{args.file}: valid order {order.id} ({order.service}, {order.os}, "
        f"managed level {order.managed_level}, {len(order.servers)} server(s))"
    )
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    order = accept_order(args.file)
    status = apply_order(
        order,
        lab=args.lab,
        inventories=args.inventory,
        check=args.check,
        limit=args.limit,
        monitoring_server=args.monitoring_server,
        send=args.send,
        out=sys.stderr if args.json else sys.stdout,
    )
    if args.json:
        record = fleet.order(order.id)
        run = record.last_run
        _dump(
            {
                "order": order.id,
                "exit_status": status,
                "run": run.as_dict() if run else None,
                "delivery_note": record.delivery_note,
            }
        )
    return status


def cmd_vars(args: argparse.Namespace) -> int:
    order = accept_order(args.file)
    extravars = {
        **order.to_vars(),
        "hostops_targets": ",".join(s.hostname for s in order.servers),
    }
    if args.json:
        _dump(extravars)
    else:
        print("---")
        print(yaml.safe_dump(extravars, sort_keys=False, allow_unicode=True), end="")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    records = fleet.orders()
    if args.json:
        _dump([r.as_dict() for r in records])
        return 0
    if not records:
        print(f"no orders yet in {state_dir()}")
        return 0
    rows = [("ORDER", "CUSTOMER", "SERVICE", "LEVEL", "SERVERS", "DELIVERED", "LAST RUN")]
    for r in records:
        last = r.last_run
        rows.append(
            (
                r.order,
                r.customer,
                r.service,
                r.managed_level,
                str(len(r.servers)),
                (r.delivered_at or "not yet")[:10],
                f"{last.mode} {last.status}" if last else "-",
            )
        )
    _table(rows)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    record = fleet.order(args.order)
    if args.json:
        _dump(record.as_dict())
        return 0
    print(
        f"order {record.order}: {record.customer}, {record.service}, level {record.managed_level}"
    )
    applied = record.last_applied_at or "-"
    print(f"delivered: {record.delivered_at or 'not yet'}; last applied: {applied}")
    print(f"delivery note: {record.delivery_note or 'none yet'}")
    print("")
    _table(
        [("SERVER", "ADDRESS", "OS")]
        + [(s["hostname"], s["address"] or "-", s["os"] or "-") for s in record.servers]
    )
    print("")
    _table(
        [("RUN", "MODE", "STATUS", "CHANGED")]
        + [
            (run.stamp, run.mode, run.status, "-" if run.changed is None else str(run.changed))
            for run in record.runs
        ]
    )
    return 0


def cmd_fleet(args: argparse.Namespace) -> int:
    servers = fleet.by_customer()
    if args.json:
        _dump(servers)
        return 0
    rows = [("CUSTOMER", "LEVEL", "SERVER", "ADDRESS", "ORDER")]
    for customer, levels in sorted(servers.items()):
        for level, hosts in sorted(levels.items()):
            rows += [
                (customer, level, h["hostname"], h["address"] or "-", h["order"]) for h in hosts
            ]
    if len(rows) == 1:
        print(f"no delivered servers yet in {state_dir()}")
        return 0
    _table(rows)
    return 0


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
