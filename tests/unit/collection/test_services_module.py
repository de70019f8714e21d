"""alteo.hostops.services' reading of 'systemctl show' and its judgement of a unit: settled
only when exactly in the state asked; every other state is the stock module's to judge
(tests/integration/test_services_action.py runs it on a real host)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

Loader = Callable[[str], ModuleType]


SHOW = (
    "Id=nginx.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
    "Id=nope.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n"
)


def test_show_is_read_one_block_per_unit_in_order(plugin_module: Loader) -> None:
    blocks = plugin_module("services").parse_show(SHOW, 2)
    assert [b["Id"] for b in blocks] == ["nginx.service", "nope.service"]
    assert blocks[1]["UnitFileState"] == ""


def test_a_count_that_does_not_match_the_units_asked_is_an_error(plugin_module: Loader) -> None:
    with pytest.raises(ValueError, match="2 blocks for 3 units"):
        plugin_module("services").parse_show(SHOW, 3)


def block(load: str = "loaded", active: str = "active", file: str = "enabled") -> dict[str, str]:
    return {"LoadState": load, "ActiveState": active, "UnitFileState": file}


@pytest.mark.parametrize(
    ("unit", "enabled", "state", "expected"),
    [
        # settled: exactly the state asked (the positive controls)
        (block(), True, "started", True),
        (block(active="inactive", file="disabled"), False, "stopped", True),
        (block(file="static"), None, "started", True),
        (block(active="failed"), True, None, True),
        # the stock module's to judge
        (block(file="static"), True, "started", False),
        (block(file="generated"), True, "started", False),
        (block(file="masked", active="inactive"), False, "stopped", False),
        (block(active="activating"), True, "started", False),
        (block(active="failed"), None, "stopped", False),
        (block(active="inactive"), True, "started", False),
        (block(file="disabled"), True, "started", False),
        (block(load="not-found", active="inactive", file=""), None, "stopped", False),
        (block(load="masked"), None, "started", False),
    ],
)
def test_settled_only_when_exactly_in_the_state_asked(
    plugin_module: Loader,
    unit: dict[str, str],
    enabled: bool | None,
    state: str | None,
    expected: bool,
) -> None:
    assert plugin_module("services").settled(unit, enabled, state) is expected
