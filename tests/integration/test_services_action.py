"""alteo.hostops.services on a real Debian 13 lab host under systemd (needs root): units
found in the state asked are left alone after one 'systemctl show'; the others go to
ansible.builtin.systemd_service, which decides, in check mode too. A harmless timer of the
fresh host (dpkg's database backup) is stopped, disabled, then enabled and started again,
each time once: the second run finds it settled."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import one_lab_host

from hostops.core.runner import repo_root, run_environment

pytestmark = pytest.mark.lab
BIN = Path(sys.executable).parent
PREFIX = "svc-"
HOST = f"{PREFIX}1"
TIMER = "dpkg-db-backup.timer"


@pytest.fixture(scope="module")
def inventory(
    cli: Any, root_user: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    with one_lab_host(cli, PREFIX, tmp_path_factory.mktemp("services") / "inventory.yml") as path:
        yield path


def services(inventory: Path, *check: str, **args: object) -> dict[str, Any]:
    """The action on the lab host (ad hoc, the repository's ansible.cfg), its result."""
    env = run_environment(repo_root())
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    argv = [
        str(BIN / "ansible"), "-i", str(inventory), HOST, *check,
        "-m", "alteo.hostops.services", "-a", json.dumps(args),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=300)
    data = json.loads(proc.stdout)
    return dict(data["plays"][0]["tasks"][0]["hosts"][HOST])


def unit_state(cli: Any, unit: str) -> list[str]:
    out = cli("lab", "ssh", HOST, "--", f"systemctl show -p UnitFileState,ActiveState {unit}")
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.split())


def test_units_in_the_state_asked_are_left_alone(inventory: Path) -> None:
    result = services(inventory, name=["ssh", TIMER], enabled=True, state="started")
    assert result.get("failed") is not True, result
    assert result["changed"] is False, result
    assert [(u["name"], u["settled"]) for u in result["units"]] == [("ssh", True), (TIMER, True)]


def test_a_unit_in_another_state_goes_to_the_stock_module(inventory: Path, cli: Any) -> None:
    # check mode: predicted, nothing done
    predicted = services(inventory, "--check", name=["ssh"], state="stopped")
    assert (predicted.get("failed"), predicted["changed"]) == (None, True), predicted
    assert predicted["units"][0]["settled"] is False, predicted
    assert unit_state(cli, "ssh") == ["ActiveState=active", "UnitFileState=enabled"]

    # a real change, once; the second run finds the timer settled
    stopped = services(inventory, name=[TIMER], enabled=False, state="stopped")
    assert (stopped.get("failed"), stopped["changed"]) == (None, True), stopped
    assert unit_state(cli, TIMER) == ["ActiveState=inactive", "UnitFileState=disabled"]
    again = services(inventory, name=[TIMER], enabled=False, state="stopped")
    assert (again["changed"], again["units"][0]["settled"]) == (False, True), again

    started = services(inventory, name=[TIMER], enabled=True, state="started")
    assert (started.get("failed"), started["changed"]) == (None, True), started
    assert unit_state(cli, TIMER) == ["ActiveState=active", "UnitFileState=enabled"]
    again = services(inventory, name=[TIMER], enabled=True, state="started")
    assert (again["changed"], again["units"][0]["settled"]) == (False, True), again


def test_a_daemon_reload_sends_every_unit_to_the_stock_module(inventory: Path) -> None:
    """systemd reads the units again first: nothing is judged from the query (the string
    "yes" read as a boolean, as the module reads it)."""
    result = services(inventory, name=["ssh", TIMER], enabled=True, daemon_reload="yes")
    assert result.get("failed") is not True, result
    assert [u["settled"] for u in result["units"]] == [False, False], result
    assert result["changed"] is False, result  # both were enabled already


def test_a_static_unit_is_the_stock_modules_to_judge(inventory: Path) -> None:
    """systemd-journald is static: not 'enabled' to the query, enabled to the stock module
    (nothing to do); the action reports what the stock module said."""
    result = services(inventory, name=["systemd-journald"], enabled=True, state="started")
    assert result.get("failed") is not True, result
    assert result["units"][0]["unit_file_state"] == "static", result
    assert (result["units"][0]["settled"], result["changed"]) == (False, False), result


def test_an_unknown_unit_fails_naming_it_and_the_others_are_still_kept(inventory: Path) -> None:
    result = services(
        inventory, "--check", name=["hostops-no-such-unit", "ssh"], enabled=True, state="started"
    )
    assert result.get("failed") is True, result
    assert str(result["msg"]).startswith("hostops-no-such-unit: "), result
    assert result["units"][0]["load_state"] == "not-found", result
    assert result["units"][1]["settled"] is True, result  # the control


def test_a_name_that_is_not_a_unit_fails_before_anything_runs(inventory: Path) -> None:
    result = services(inventory, name=["ssh; reboot"], state="started")
    assert result.get("failed") is True, result
    assert "name: 'ssh; reboot' is not a unit name" in str(result.get("msg")), result
    nothing_asked = services(inventory, name=["ssh"])
    assert nothing_asked.get("failed") is True, nothing_asked
    assert "one of the following is required: enabled, state, daemon_reload" in str(
        nothing_asked.get("msg")
    ), nothing_asked
