"""``hostops sla compute FILE [--json]``: one month's availability and credits (contract §5).

The rules live in :mod:`hostops.module_utils.sla` (``plugins/module_utils/sla.py``) and
``docs/sla.md`` explains them; this module reads the incidents file as hostile input
(a regular file of bounded size, plain YAML without anchors, aliases or tags) and prints
the result as a table or as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from hostops.module_utils.sla import (
    AVAILABILITY_CREDIT_PER_HOUR,
    TARGET_PERCENT,
    TIMEZONE,
    MonthResult,
    compute,
    format_duration,
    to_cent,
)
from hostops.sla import report_cli
from hostops.sla.incidents import load_incidents, summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops sla compute`` and ``hostops sla report``."""
    sla = subparsers.add_parser("sla", help="service levels: availability and credits (§5)")
    verbs = sla.add_subparsers(dest="sla_command", metavar="VERB", required=True)
    calculator = verbs.add_parser(
        "compute",
        help="one month's availability and credits from an incidents file",
        description="Apply the contract's service levels (§5, as docs/sla.md reads them) to "
        "a month of incidents: availability against the 99.9% target, the availability "
        "credit and the GTR credits. A bad file exits 2 with one line per problem.",
    )
    calculator.add_argument("file", type=Path, metavar="FILE", help="the incidents file (YAML)")
    calculator.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    calculator.set_defaults(func=cmd_compute)
    report_cli.register(verbs)


def cmd_compute(args: argparse.Namespace) -> int:
    result = compute(load_incidents(args.file))
    if args.json:
        print(as_json(result))
        for note in result.notes:
            print(f"hostops: note: {note}", file=sys.stderr)
    else:
        print(as_table(result))
    return 0


# -- Output ---------------------------------------------------------------------------------


def as_json(result: MonthResult) -> str:
    """One JSON object; Decimals are written as numbers with their decimals (100.000000)."""

    def number(value: object) -> str:
        return str(value) if not isinstance(value, bool | str) else json.dumps(value)

    items = (f"{json.dumps(key)}: {number(value)}" for key, value in summary(result).items())
    return "{" + ", ".join(items) + "}"


def as_table(result: MonthResult) -> str:
    fee = to_cent(result.monthly_fee_eur)
    rate = AVAILABILITY_CREDIT_PER_HOUR * 100
    verdict = "met" if result.target_met else "MISSED"
    if result.target_met:
        why = "target met: no availability credit"
    else:
        why = f"{rate.normalize()} % x {result.complete_hours} complete hour(s) of {fee} EUR"
    shares = [credit for credit in result.gtr_credits if credit.in_month]
    gtr_why = f"{len(shares)} incident(s) with a ticket, GTR {format_duration(result.gtr)}"
    rows = [
        ("month", f"{result.month} ({TIMEZONE}, {format_duration(result.month.length)})"),
        ("monthly fee", f"{fee} EUR"),
        ("provider unavailability", _seconds(result.provider_time)),
        ("client-caused (excluded)", _seconds(result.client_time)),
        ("planned, announced (excluded)", _seconds(result.excluded_planned_time)),
        ("availability", f"{result.availability_percent} % (target {TARGET_PERCENT} %: {verdict})"),
        ("availability credit", f"{result.availability_credit_eur} EUR ({why})"),
        ("GTR credit", f"{result.gtr_credit_eur} EUR ({gtr_why}, capped at the fee)"),
        ("total credit", f"{result.total_credit_eur} EUR"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    if result.gtr_credits:
        lines += ["", "GTR (restoration = end - ticket opening):"]
        for credit in result.gtr_credits:
            share = f"{int(credit.share * 100)} % of the fee" if credit.share else "no credit"
            where = "" if credit.in_month else " (started in another month: not this month's)"
            lines.append(
                f"  incidents[{credit.index}]  restored in {format_duration(credit.restoration)}, "
                f"overrun {format_duration(credit.overrun)}: {share}{where}"
            )
    if result.notes:
        lines += ["", "notes:", *(f"  {note}" for note in result.notes)]
    return "\n".join(lines)


def _seconds(span: timedelta) -> str:
    return f"{format_duration(span)} ({int(span.total_seconds())} s)"
