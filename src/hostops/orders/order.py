"""Order files (bons de commande): read one strictly, apply the defaults, report every problem.

An order is the YAML file that says what to provision for a customer (format version 1;
``examples/orders/`` has one per managed level). Reading it is two steps, kept apart:

* :func:`validate_order_text` and :func:`load_order` read the file safely (below) and check
  it against the schema (``order_rules``, shared with the collection), returning an
  :class:`Order` with the defaults applied, or raise :class:`~hostops.core.errors.UsageError`
  listing every problem, one ``FIELD: MESSAGE`` line each (``SOURCE: MESSAGE`` for problems
  with the file itself). Unknown fields are errors at every level, values are type-strict
  (``"8.4"`` is text, ``8.4`` is a number) and secrets are refused: they belong in Ansible
  Vault, the order only names the variable.
* :func:`check_available` says what the toolkit cannot provision yet (:data:`AVAILABLE`).
  :func:`accept_order` runs both, which is what ``hostops order validate`` and
  ``hostops order apply`` mean by a valid order: one we can provision today.

The rules themselves live once, in the collection's ``plugins/module_utils/order_rules.py``:
``playbooks/provision.yml`` applies the same ones to its extra variables (an AWX job) before
any host is touched. This module adds what only a file needs: the file is hostile until
proven otherwise: its size, depth and number of values are bounded before anything is built,
YAML aliases and tags other than the plain ones are refused, and every failure is a line for
a person, never a traceback.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from hostops.core.errors import UsageError
from hostops.core.textfile import FileTooBig, NotRegularFile, read_regular
from hostops.module_utils.order_rules import (
    AVAILABLE,
    DATABASES,
    DEFAULT_BACKUP_TIME,
    DEFAULT_OS,
    DEFAULT_RETENTION_DAYS,
    FIREWALL_LEVELS,
    FORMAT_VERSION,
    MAIL_PROFILES,
    MANAGED_LEVELS,
    MAX_PROBLEMS,
    ORDER_ID,
    OS_RELEASES,
    PHP_VERSIONS,
    SERVICES,
    SHARED_HOSTING_RETENTION_DAYS,
    Backups,
    Contact,
    Customer,
    Database,
    ManagedLevel,
    Monitoring,
    Order,
    OsRelease,
    Plesk,
    Server,
    Service,
    Sla,
    Stack,
    WebStack,
    _capped,
    _clip,
    _kind,
    _show,
    check_available,
    check_document,
)

__all__ = [
    "AVAILABLE",
    "DATABASES",
    "DEFAULT_BACKUP_TIME",
    "DEFAULT_OS",
    "DEFAULT_RETENTION_DAYS",
    "FIREWALL_LEVELS",
    "FORMAT_VERSION",
    "MAIL_PROFILES",
    "MANAGED_LEVELS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_ORDER_BYTES",
    "MAX_PROBLEMS",
    "ORDER_ID",
    "OS_RELEASES",
    "PHP_VERSIONS",
    "SERVICES",
    "SHARED_HOSTING_RETENTION_DAYS",
    "Backups",
    "Contact",
    "Customer",
    "Database",
    "ManagedLevel",
    "Monitoring",
    "Order",
    "OsRelease",
    "Plesk",
    "Server",
    "Service",
    "Sla",
    "Stack",
    "WebStack",
    "accept_order",
    "check_available",
    "load_order",
    "validate_order_text",
]

# Bounds on hostile input, checked before anything is built. A real order is a few KiB,
# four levels deep and a few hundred values; these keep the worst case well under a second.
MAX_ORDER_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 20
MAX_NODES: Final = 10_000

_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _YAML_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)


# -- Public entry points --------------------------------------------------------------------


def load_order(path: str | Path) -> Order:
    """Read and validate the order file at *path*; raise UsageError listing every problem."""
    source = str(path)
    return validate_order_text(_read_text(Path(path), source), source)


def validate_order_text(text: str, source: str = "<order>") -> Order:
    """Validate an order given as YAML text; *source* names it in messages."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_ORDER_BYTES:
        raise UsageError(f"{source}: {_too_big(size)}")
    order, problems = check_document(_parse_yaml(text, source), source)
    if problems or order is None:
        raise UsageError(problems or [f"{source}: not a valid order"])
    return order


def accept_order(path: str | Path, available: Mapping[str, bool] | None = None) -> Order:
    """Load the order at *path* and require that the toolkit can provision all of it.

    Schema problems come first (the file is wrong); availability problems are only
    looked for on a schema-valid order. Both raise UsageError (exit status 2).
    """
    order = load_order(path)
    problems = check_available(order, available)
    if problems:
        raise UsageError(problems)
    return order


# -- Reading the file safely ------------------------------------------------------------------


def _too_big(size: int) -> str:
    return f"{size} bytes is too big for an order (the limit is {MAX_ORDER_BYTES} bytes)"


def _read_text(path: Path, source: str) -> str:
    """The order's text: a regular file only (hostops/core/textfile.py), UTF-8."""
    try:
        raw = read_regular(path, MAX_ORDER_BYTES)
    except NotRegularFile as err:
        raise UsageError(
            f"{source}: cannot read the order: {err.kind}; give the order's file"
        ) from err
    except FileTooBig as err:
        if err.size is not None:
            raise UsageError(f"{source}: {_too_big(err.size)}") from err
        raise UsageError(
            f"{source}: more than {MAX_ORDER_BYTES} bytes is too big for an order"
        ) from err
    except OSError as err:
        raise UsageError(f"{source}: cannot read the order: {err.strerror or err}") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UsageError(
            f"{source}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line} "
            f"(offset {err.start}); save the order as UTF-8"
        ) from err


class _OrderConstructor(SafeConstructor):
    """SafeConstructor that records duplicate keys instead of letting the last one win."""

    # Dates stay text: no field of an order is a date; the field's own check says what is wrong.
    yaml_constructors: ClassVar[dict[str | None, Any]] = {
        **SafeConstructor.yaml_constructors,
        _YAML_TAG + "timestamp": SafeConstructor.construct_scalar,
    }

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        mapping: dict[Hashable, Any] = {}
        first_line: dict[Hashable, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                seen = key in mapping
            except TypeError:  # a list or mapping as a key
                self.problems.append(
                    f"line {line}: a key must be a plain value, not a {_kind(key)}"
                )
                continue
            if seen:
                self.problems.append(
                    f"line {line}: duplicate key {_show(key)} (first at line {first_line[key]})"
                )
                continue
            first_line[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


class _PythonLoader(yaml.SafeLoader):
    """PyYAML's pure-Python loader (used without libyaml), bounded while it parses.

    libyaml composes a whole 64 KiB document in milliseconds and :func:`_check_nodes`
    bounds it afterwards. The pure-Python parser is ten times slower (and slower still on
    deep nesting), so it stops as soon as the document is too deep or has too many values.
    """

    source = "<order>"
    _nodes = 0
    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._nodes += 1
        self._depth += 1
        try:
            if self._nodes > MAX_NODES:
                raise UsageError(_too_many(self.source))
            if self._depth > MAX_DEPTH:
                raise UsageError(_too_deep(self.source, self.get_mark().line + 1))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else _PythonLoader


def _parse_yaml(text: str, source: str) -> object:
    constructor = _OrderConstructor()
    try:
        loader = _Loader(text)
        loader.source = source
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            return None
        _check_nodes(node, source)
        data = constructor.construct_document(node)
    except yaml.YAMLError as err:
        raise UsageError(_yaml_error(err, text, source)) from err
    except RecursionError as err:
        raise UsageError(f"{source}: nested too deeply for an order") from err
    except ValueError as err:  # int('9' * 5000), !!float abc, text that is not encodable
        raise UsageError(f"{source}: cannot read this YAML: {_clip(str(err), 120)}") from err
    if constructor.problems:
        raise UsageError(_capped([f"{source}: {line}" for line in constructor.problems], source))
    return data


def _check_nodes(root: Node, source: str) -> None:
    """Refuse aliases, unusual tags, deep nesting and huge documents before building data.

    An alias composes to the very node its anchor named, so a node met twice is an alias:
    this is what stops a "billion laughs" before it is expanded.
    """
    seen: set[int] = set()
    todo: list[tuple[Node, int]] = [(root, 1)]
    while todo:
        node, depth = todo.pop()
        line = node.start_mark.line + 1
        if id(node) in seen:
            raise UsageError(
                f"{source}: YAML anchors and aliases (&name, *name) are not allowed in an order; "
                f"write the value out (the anchor is at line {line})"
            )
        seen.add(id(node))
        if len(seen) > MAX_NODES:
            raise UsageError(_too_many(source))
        if depth > MAX_DEPTH:
            raise UsageError(_too_deep(source, line))
        if node.tag not in _PLAIN_TAGS:
            raise UsageError(f"{source}: line {line}: {_tag_problem(node.tag)}")
        if isinstance(node, SequenceNode):
            todo.extend((child, depth + 1) for child in reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                todo.extend(((value, depth + 1), (key, depth + 1)))


def _too_many(source: str) -> str:
    return f"{source}: more than {MAX_NODES} values is too many for an order"


def _too_deep(source: str, line: int) -> str:
    return f"{source}: line {line}: nested more than {MAX_DEPTH} levels deep"


def _tag_problem(tag: str) -> str:
    if tag == _YAML_TAG + "merge":
        return "merge keys (<<) are not allowed in an order; write the fields out"
    shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return f"YAML tag {_clip(shown)} is not allowed in an order"


def _yaml_error(err: yaml.YAMLError, text: str, source: str) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        context = f" ({err.context})" if err.context else ""
        return (
            f"{source}: YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: "
            f"{err.problem}{context}"
        )
    if isinstance(err, yaml.reader.ReaderError):
        line = text.count("\n", 0, err.position) + 1
        char = err.character if isinstance(err.character, int) else ord(err.character)
        return f"{source}: character U+{char:04X} at line {line} is not allowed in YAML"
    return f"{source}: YAML syntax error: {_clip(' '.join(str(err).split()))}"
