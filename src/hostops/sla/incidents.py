"""A month of incidents read as hostile input (a regular file of bounded size, plain YAML
without anchors, aliases or tags), and a month's result as the summary both SLA commands
print."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any, ClassVar, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from hostops.core.errors import UsageError
from hostops.core.textfile import FileTooBig, NotRegularFile, read_regular
from hostops.module_utils.sla import (
    MonthInput,
    MonthResult,
    SlaInputError,
    read_month,
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
