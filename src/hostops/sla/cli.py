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
from collections.abc import Hashable
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from hostops.core.errors import UsageError
from hostops.core.textfile import FileTooBig, NotRegularFile, read_regular
from hostops.module_utils.sla import (
    AVAILABILITY_CREDIT_PER_HOUR,
    TARGET_PERCENT,
    TIMEZONE,
    MonthInput,
    MonthResult,
    SlaInputError,
    compute,
    format_duration,
    read_month,
    to_cent,
)

# A month of incidents is a few KiB; these bounds keep hostile files cheap to refuse.
MAX_FILE_BYTES: Final = 256 * 1024
MAX_NODES: Final = 50_000
MAX_DEPTH: Final = 10
_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _YAML_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
_Loader: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

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
    from hostops.sla import report_cli as sla_report_cli  # noqa: PLC0415 - it imports this module
    sla_report_cli.register(verbs)


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


def summary(result: MonthResult) -> dict[str, object]:
    """The ``--json`` object: exactly these keys, amounts as Decimal (to the cent)."""
    return {
        "availability_percent": result.availability_percent,
        "target_met": result.target_met,
        "unavailable_seconds": int(result.provider_time.total_seconds()),
        "availability_penalty_eur": result.availability_credit_eur,
        "gtr_penalty_eur": result.gtr_credit_eur,
        "total_credit_eur": result.total_credit_eur,
    }


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


# -- Reading the file safely ------------------------------------------------------------------


def load_incidents(path: Path) -> MonthInput:
    """Read and check the incidents file; raise UsageError listing every problem."""
    source = str(path)
    data = _parse_yaml(_read_text(path, source), source)
    try:
        return read_month(data)
    except SlaInputError as err:
        raise UsageError(err.problems) from err


def _read_text(path: Path, source: str) -> str:
    """The file's text: a regular file only (hostops/core/textfile.py), UTF-8."""
    try:
        raw = read_regular(path, MAX_FILE_BYTES)
    except NotRegularFile as err:
        raise UsageError(f"{source}: is {err.kind}, not a regular file") from err
    except FileTooBig as err:
        if err.size is not None:
            raise UsageError(
                f"{source}: {err.size} bytes is too big for a month of incidents "
                f"(the limit is {MAX_FILE_BYTES})"
            ) from err
        raise UsageError(
            f"{source}: more than {MAX_FILE_BYTES} bytes is too big for a month"
        ) from err
    except OSError as err:
        raise UsageError(f"{source}: cannot read the file: {err.strerror or err}") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UsageError(
            f"{source}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}"
        ) from err


class _Constructor(SafeConstructor):
    """SafeConstructor that records duplicate keys instead of letting the last one win.

    Unquoted timestamps stay datetimes (``read_month`` accepts them, with an offset)."""

    yaml_constructors: ClassVar[dict[str | None, Any]] = dict(SafeConstructor.yaml_constructors)

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                seen = key in mapping
            except TypeError:  # a list or mapping as a key
                self.problems.append(f"line {line}: a key must be a plain value")
                continue
            if seen:
                self.problems.append(f"line {line}: duplicate key {key!r}")
                continue
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def _parse_yaml(text: str, source: str) -> object:
    constructor = _Constructor()
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            raise UsageError(f"{source}: the file is empty")
        _check_nodes(node, source)
        data = constructor.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UsageError(f"{source}: YAML syntax error{where}: {err.problem}") from err
    except yaml.YAMLError as err:
        raise UsageError(f"{source}: cannot read this YAML: {' '.join(str(err).split())}") from err
    except RecursionError as err:
        raise UsageError(f"{source}: nested too deeply") from err
    except ValueError as err:  # int('9' * 5000), a timestamp out of range
        raise UsageError(f"{source}: cannot read this YAML: {str(err)[:120]}") from err
    if constructor.problems:
        raise UsageError([f"{source}: {problem}" for problem in constructor.problems])
    return data


def _check_nodes(root: Node, source: str) -> None:
    """Refuse aliases, tags and deep or huge documents before any value is built.

    An alias composes to the very node its anchor named, so a node met twice is an alias:
    refusing it stops a "billion laughs" before it is expanded.
    """
    seen: set[int] = set()
    todo: list[tuple[Node, int]] = [(root, 1)]
    while todo:
        node, depth = todo.pop()
        line = node.start_mark.line + 1
        if id(node) in seen:
            raise UsageError(
                f"{source}: YAML anchors and aliases (&name, *name) are not allowed; "
                f"write the value out (the anchor is at line {line})"
            )
        seen.add(id(node))
        if len(seen) > MAX_NODES:
            raise UsageError(f"{source}: more than {MAX_NODES} values is too many")
        if depth > MAX_DEPTH:
            raise UsageError(f"{source}: line {line}: nested more than {MAX_DEPTH} levels deep")
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace(_YAML_TAG, "!!")
            what = (
                "merge keys (<<) are not allowed; write the fields out"
                if tag == "!!merge"
                else f"the YAML tag {tag[:40]} is not allowed"
            )
            raise UsageError(f"{source}: line {line}: {what}")
        if isinstance(node, SequenceNode):
            todo.extend((child, depth + 1) for child in reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                todo.extend(((value, depth + 1), (key, depth + 1)))
