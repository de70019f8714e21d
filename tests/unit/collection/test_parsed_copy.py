"""The copy of parsed files that the strategy gives Ansible's DataLoader (issue 20): the
same data, types and tags as copy.deepcopy gives, nothing mutable shared with the loader's
kept data, the immutable values shared."""

from __future__ import annotations

import copy
import datetime
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from ansible.module_utils._internal._datatag import AnsibleTagHelper
from ansible.parsing.dataloader import DataLoader

PATH = Path(__file__).resolve().parents[3] / "plugins" / "plugin_utils" / "parsed_copy.py"

YAML = """\
defaults: &defaults
  name: "{{ inventory_hostname }}"
  port: 8080
  ratio: 0.5
  enabled: true
  nothing: null
  when: 2026-12-07
  list: [a, {b: [1, 2]}]
first: *defaults
second: *defaults
tasks:
  - name: Install
    ansible.builtin.apt:
      name: ["{{ item }}", nginx]
"""


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostops_parsed_copy", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parsed(tmp_path: Path) -> Any:
    path = tmp_path / "tasks.yml"
    path.write_text(YAML)
    return DataLoader().load_from_file(str(path), unsafe=True, trusted_as_template=True)


def walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every node of VALUE with its path (containers and scalars)."""
    nodes = [(path, value)]
    if isinstance(value, dict):
        for key, item in value.items():
            nodes += walk(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            nodes += walk(item, f"{path}/{index}")
    return nodes


def test_the_copy_has_deepcopys_values_types_and_tags(tmp_path: Path) -> None:
    original = parsed(tmp_path)
    ours, deep = load().copy_parsed(original), copy.deepcopy(original)
    assert ours == deep == original
    ours_nodes, deep_nodes = walk(ours), walk(deep)
    assert [path for path, _ in ours_nodes] == [path for path, _ in deep_nodes]
    assert len(ours_nodes) > 30
    tagged = 0
    for (path, mine), (_, theirs) in zip(ours_nodes, deep_nodes, strict=True):
        assert type(mine) is type(theirs), path
        assert AnsibleTagHelper.tags(mine) == AnsibleTagHelper.tags(theirs), path
        tagged += bool(AnsibleTagHelper.tags(mine))
    assert tagged > 20  # the loader tagged them (origin, trusted): the tags were compared


def test_nothing_mutable_is_shared_and_the_immutable_is(tmp_path: Path) -> None:
    original = parsed(tmp_path)
    kept = copy.deepcopy(original)
    ours = load().copy_parsed(original)
    for (path, mine), (_, theirs) in zip(walk(ours), walk(original), strict=True):
        if isinstance(theirs, (dict, list)):
            assert mine is not theirs, path
        else:
            assert mine is theirs, path  # a string, number, date or None: shared
    ours["defaults"]["port"] = 1
    ours["defaults"]["list"][1]["b"].append(3)
    ours["tasks"][0]["ansible.builtin.apt"]["name"].clear()
    ours["new"] = True
    assert original == kept  # the loader's data as parsed
    # the control: a shallow copy shares the nested containers, and the test sees it
    shallow = copy.copy(original)
    shallow["defaults"]["port"] = 1
    assert original != kept


def test_an_alias_stays_one_container_and_a_cycle_ends(tmp_path: Path) -> None:
    copy_parsed = load().copy_parsed
    ours = copy_parsed(parsed(tmp_path))
    assert ours["first"] is ours["second"] is ours["defaults"]  # as copy.deepcopy keeps it
    cycle: list[Any] = [1]
    cycle.append({"back": cycle})
    made = copy_parsed(cycle)
    assert made is not cycle and made[1]["back"] is made


def test_other_types_are_deep_copied() -> None:
    class Box:
        def __init__(self) -> None:
            self.items = [1]

    copy_parsed = load().copy_parsed
    box, numbers = Box(), {1, 2}
    made = copy_parsed({"box": box, "set": numbers, "day": datetime.date(2026, 12, 7)})
    assert made["box"] is not box and made["box"].items == [1]
    assert made["box"].items is not box.items
    assert made["set"] == numbers and made["set"] is not numbers
