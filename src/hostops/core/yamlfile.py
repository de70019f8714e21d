"""A YAML file named on the command line (an order, a month of incidents), read as hostile
input: one reader, bounded before anything is built.

The file must be a regular file (:mod:`hostops.core.textfile`) of at most ``max_bytes``,
UTF-8, one document of plain YAML: no anchors or aliases (a "billion laughs" is refused
before it is expanded), no tags but the core schema's, no merge keys, no duplicate keys,
at most ``max_nodes`` values and ``max_depth`` levels. Every problem is a ``UsageError``
(exit 2) naming the file, and the line where there is one.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from hostops.core.errors import UsageError
from hostops.core.textfile import FileTooBig, NotRegularFile, read_regular
from hostops.module_utils.order_rules import _capped, _clip, _kind, _show

_YAML_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _YAML_TAG + name for name in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)


@dataclass(frozen=True)
class Kind:
    """What a file holds, its bounds and how messages name it."""

    the_file: str  # "the order"
    a_document: str  # "an order"
    max_bytes: int
    max_nodes: int
    max_depth: int
    timestamps: bool = False  # unquoted dates and times become datetimes (else text)
    empty_ok: bool = False  # an empty file is None (else refused)


def read_yaml(path: Path, kind: Kind, source: str | None = None) -> object:
    """The file's data; UsageError (exit 2) on any problem, naming SOURCE (the path)."""
    source = source or str(path)
    return parse_yaml(read_text(path, kind, source), kind, source)


def too_big(size: int, kind: Kind) -> str:
    return f"{size} bytes is too big for {kind.a_document} (the limit is {kind.max_bytes} bytes)"


def read_text(path: Path, kind: Kind, source: str) -> str:
    """The file's text: a regular file only, at most ``max_bytes``, UTF-8."""
    try:
        raw = read_regular(path, kind.max_bytes)
    except NotRegularFile as err:
        raise UsageError(
            f"{source}: cannot read {kind.the_file}: {err.kind}, not a regular file"
        ) from err
    except FileTooBig as err:
        if err.size is not None:
            raise UsageError(f"{source}: {too_big(err.size, kind)}") from err
        raise UsageError(
            f"{source}: more than {kind.max_bytes} bytes is too big for {kind.a_document}"
        ) from err
    except OSError as err:
        raise UsageError(f"{source}: cannot read {kind.the_file}: {err.strerror or err}") from err
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise UsageError(
            f"{source}: not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line} "
            f"(offset {err.start}); save {kind.the_file} as UTF-8"
        ) from err


class _Constructor(SafeConstructor):
    """SafeConstructor that records duplicate keys instead of letting the last one win;
    unquoted dates and times become datetimes."""

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


class _TextDatesConstructor(_Constructor):
    """Dates and times stay text (the field's own check says what is wrong)."""

    yaml_constructors: ClassVar[dict[str | None, Any]] = {
        **SafeConstructor.yaml_constructors,
        _YAML_TAG + "timestamp": SafeConstructor.construct_scalar,
    }


class _PythonLoader(yaml.SafeLoader):
    """PyYAML's pure-Python loader (used without libyaml), bounded while it parses.

    libyaml composes a whole document in milliseconds and :func:`_check_nodes` bounds it
    afterwards. The pure-Python parser is ten times slower (and slower still on deep
    nesting), so it stops as soon as the document is too deep or has too many values.
    """

    source = "<yaml>"
    kind: Kind | None = None
    _nodes = 0
    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        assert self.kind is not None
        self._nodes += 1
        self._depth += 1
        try:
            if self._nodes > self.kind.max_nodes:
                raise UsageError(_too_many(self.source, self.kind))
            if self._depth > self.kind.max_depth:
                raise UsageError(_too_deep(self.source, self.get_mark().line + 1, self.kind))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else _PythonLoader


def parse_yaml(text: str, kind: Kind, source: str) -> object:
    """The data of one YAML document given as text, bounded and plain (see the module)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > kind.max_bytes:
        raise UsageError(f"{source}: {too_big(size, kind)}")
    constructor = _Constructor() if kind.timestamps else _TextDatesConstructor()
    try:
        loader = _Loader(text)
        loader.source, loader.kind = source, kind
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            if kind.empty_ok:
                return None
            raise UsageError(f"{source}: the file is empty")
        _check_nodes(node, kind, source)
        data = constructor.construct_document(node)
    except yaml.YAMLError as err:
        raise UsageError(_yaml_error(err, text, source)) from err
    except RecursionError as err:
        raise UsageError(f"{source}: nested too deeply for {kind.a_document}") from err
    except ValueError as err:  # int('9' * 5000), !!float abc, a timestamp out of range
        raise UsageError(f"{source}: cannot read this YAML: {_clip(str(err), 120)}") from err
    if constructor.problems:
        raise UsageError(_capped([f"{source}: {line}" for line in constructor.problems], source))
    return data


def _check_nodes(root: Node, kind: Kind, source: str) -> None:
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
                f"{source}: YAML anchors and aliases (&name, *name) are not allowed in "
                f"{kind.a_document}; write the value out (the anchor is at line {line})"
            )
        seen.add(id(node))
        if len(seen) > kind.max_nodes:
            raise UsageError(_too_many(source, kind))
        if depth > kind.max_depth:
            raise UsageError(_too_deep(source, line, kind))
        if node.tag not in _PLAIN_TAGS:
            raise UsageError(f"{source}: line {line}: {_tag_problem(node.tag, kind)}")
        if isinstance(node, SequenceNode):
            todo.extend((child, depth + 1) for child in reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                todo.extend(((value, depth + 1), (key, depth + 1)))


def _too_many(source: str, kind: Kind) -> str:
    return f"{source}: more than {kind.max_nodes} values is too many for {kind.a_document}"


def _too_deep(source: str, line: int, kind: Kind) -> str:
    return f"{source}: line {line}: nested more than {kind.max_depth} levels deep"


def _tag_problem(tag: str, kind: Kind) -> str:
    if tag == _YAML_TAG + "merge":
        return f"merge keys (<<) are not allowed in {kind.a_document}; write the fields out"
    shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    return f"YAML tag {_clip(shown)} is not allowed in {kind.a_document}"


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
