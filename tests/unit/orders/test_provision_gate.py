"""playbooks/provision.yml refuses a bad order before any task reaches a host (an AWX job
carries the order as extra variables, without 'hostops order validate'), by the same rules
as the CLI (plugins/module_utils/order_rules.py). Real ansible-playbook runs; the managed
host is an inventory entry whose SSH port on loopback is closed, so a run that got past the
check would show that host as unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostops.module_utils.order_rules import backup_path_problem, order_document, vars_problems
from hostops.orders.order import load_order

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
EXAMPLES = sorted((ROOT / "examples" / "orders").glob("*.yml"))
GHOST = "ghost.example"


def order_vars(name: str) -> dict[str, Any]:
    return load_order(ROOT / "examples" / "orders" / f"{name}.yml").to_vars()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_order_reads_back_from_its_variables(path: Path) -> None:
    """The control: what the CLI hands to provision.yml passes the playbook's check."""
    order = load_order(path)
    assert vars_problems(order.to_vars()) == []
    assert load_order(path).to_vars() == order.to_vars()
    assert order_document(order.to_vars())["order"] == order.id


def changed(name: str, **values: Any) -> dict[str, Any]:
    result = order_vars(name)
    for key, value in values.items():
        result[key] = value
    return result


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "debian12 with the web stack",
        changed("custom", hostops_os="debian12"),
        "hostops_stack.mail: not available on os 'debian12'",
    ),
    (
        "a PHP the release does not ship",
        changed(
            "custom",
            hostops_stack={**order_vars("custom")["hostops_stack"], "web": {"php_version": "7.4"}},
        ),
        "hostops_stack.web.php_version: '7.4' is not provided by debian13",
    ),
    (
        "no order number",
        {k: v for k, v in order_vars("basic").items() if k != "hostops_order"},
        "hostops_order: required field is missing",
    ),
    (
        "an unknown managed level",
        changed("basic", hostops_managed_level="gold"),
        "hostops_managed_level: 'gold' is not one of none, basic, supervision, plesk, custom",
    ),
    (
        "a backup of /proc",
        changed(
            "custom",
            hostops_backups={
                **order_vars("custom")["hostops_backups"],
                "paths": ["/etc", "/proc/1"],
            },
        ),
        "hostops_backups.paths[1]: '/proc/1' is under /proc",
    ),
    (
        "a retention of 0 days",
        changed(
            "basic", hostops_backups={**order_vars("basic")["hostops_backups"], "retention_days": 0}
        ),
        "hostops_backups.retention_days: 0 is out of range 1..365",
    ),
    (
        "a loopback address for a server",
        changed("basic", hostops_servers=[{"hostname": "a.example.fr", "address": "127.0.0.1"}]),
        "hostops_servers[0].address: '127.0.0.1' cannot be a server's address",
    ),
    (
        "MongoDB, which no role installs",
        changed(
            "custom",
            hostops_stack={**order_vars("custom")["hostops_stack"], "databases": ["mongodb"]},
        ),
        "hostops_stack.databases: 'mongodb' is not available yet",
    ),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_rules_name_the_variable(values: dict[str, Any], expected: str) -> None:
    problems = vars_problems(values)
    assert any(line.startswith(expected) for line in problems), problems


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/", "is the whole server"),
        ("/./", "is the whole server"),
        ("/proc", "is under /proc"),
        ("/sys/kernel", "is under /sys"),
        ("/dev/", "is under /dev"),
        ("/run/lock", "is under /run"),
        ("etc", "is not an absolute path"),
        ("/var/../proc", "contains '..'"),
    ],
)
def test_paths_a_backup_cannot_hold(path: str, why: str) -> None:
    problem = backup_path_problem(path)
    assert problem is not None and problem.startswith(why)


@pytest.mark.parametrize("path", ["/etc", "/var/www", "/srv/run", "/devices", "/home/proc"])
def test_paths_a_backup_holds(path: str) -> None:
    assert backup_path_problem(path) is None


def run_provision(tmp_path: Path, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    extra = tmp_path / "order.yml"
    extra.write_text(yaml.safe_dump(values))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {GHOST: {"ansible_host": "127.0.0.1", "ansible_port": 1}},
                    "children": {"monitoring_servers": {"hosts": {GHOST: {}}}},
                }
            }
        )
    )
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"@{extra}",
            str(ROOT / "playbooks" / "provision.yml"),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
            "ANSIBLE_TIMEOUT": "5",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_bad_order_stops_provision_yml_before_any_host(tmp_path: Path) -> None:
    out = run_provision(tmp_path, changed("custom", hostops_os="debian12"))
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "The order is not valid; no host was touched." in text
    assert "hostops_stack.mail: not available on os 'debian12'" in text
    # the managed host is never contacted: it has no task result and no recap line
    assert f"[{GHOST}]" not in text and f"{GHOST} " not in text, text


def test_a_good_order_goes_on_to_the_hosts(tmp_path: Path) -> None:
    """The positive control: past the check, the run reaches (here: fails to reach) the host."""
    out = run_provision(tmp_path, order_vars("none"))
    text = out.stdout + out.stderr
    assert "The order is not valid" not in text
    assert f"fatal: [{GHOST}]: UNREACHABLE!" in text, text
