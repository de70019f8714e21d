"""alteo.hostops.services on a real Debian 13 lab host under systemd (needs root): units
found in the state asked are left alone after one 'systemctl show'; the others go to
ansible.builtin.systemd_service, which decides, in check mode too. A harmless timer of the
fresh host (dpkg's database backup) is stopped, disabled, then enabled and started again,
each time once: the second run finds it settled. On the same host, alteo.hostops.apt_present
in check mode refreshes the package lists for real before apt predicts, only when a
package is missing."""

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
    return action(inventory, "alteo.hostops.services", *check, **args)


def action(inventory: Path, module: str, *check: str, **args: object) -> dict[str, Any]:
    """MODULE (its action) on the lab host, ad hoc with the repository's ansible.cfg."""
    env = run_environment(repo_root())
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    argv = [
        str(BIN / "ansible"), "-i", str(inventory), HOST, *check,
        "-m", module, "-a", json.dumps(args),
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


def test_apt_present_in_check_mode_refreshes_the_lists_only_for_a_missing_package(
    inventory: Path, cli: Any
) -> None:
    """The roles have no check-mode task of their own for the package lists: the action
    refreshes them (for real: a cache, not configuration) before apt predicts, and only
    when something is missing. The host's lists are removed first (and their directory
    made two days old): apt cannot predict without them."""

    def lists() -> int:
        listed = "find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock | wc -l"
        out = cli("lab", "ssh", HOST, "--", listed)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.split()[-1])

    # apt judges the lists' age by the directory's time when it has no success stamp
    out = cli("lab", "ssh", HOST, "--", "rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin"
              " /var/lib/apt/periodic/update-success-stamp"
              " && touch -d '2 days ago' /var/lib/apt/lists")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert lists() == 0
    # the control: without update_cache apt has no lists to predict from
    stale = action(inventory, "alteo.hostops.apt_present", "--check", name=["hello"])
    assert stale.get("failed") is True, stale
    assert "hello" in str(stale.get("msg")), stale
    # nothing missing: dpkg answers, apt is not run and the lists stay as they are
    installed = action(
        inventory, "alteo.hostops.apt_present", "--check",
        name=["dpkg"], update_cache=True, cache_valid_time=3600,
    )  # fmt: skip
    assert (installed.get("failed"), installed["changed"], installed["apt"]) == (None, False, False)
    assert lists() == 0
    # a missing package: the lists are fetched, then apt predicts the install (not made)
    predicted = action(
        inventory, "alteo.hostops.apt_present", "--check",
        name=["hello"], update_cache=True, cache_valid_time=3600,
    )  # fmt: skip
    assert (predicted.get("failed"), predicted["changed"]) == (None, True), predicted
    assert predicted["missing"] == ["hello"], predicted
    assert lists() > 0
    out = cli("lab", "ssh", HOST, "--", "dpkg-query -W -f='${db:Status-Abbrev}' hello")
    assert "ii" not in out.stdout, out.stdout
