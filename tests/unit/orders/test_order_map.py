"""The one map from an order to the roles (issue 16): playbooks/vars/order.yml, with the
rules of plugins/module_utils/order_map.py. No role reads the order's variables; the map
gives the roles only options their argument specs document; real ansible-playbook runs
show what the map hands the roles for an order, a partial AWX order and no order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostops.module_utils.order_map import backup_problems, order_backups, order_roles
from hostops.module_utils.order_rules import ORDER_VARS
from hostops.orders.order import load_order

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
MAP = ROOT / "playbooks" / "vars" / "order.yml"
# The order's variables, the host's name from the order and the lab's apt cache: what a
# role must not read (the map, or the inventory for the apt cache, gives them).
ORDER_NAMES = sorted({*ORDER_VARS, "hostops_fqdn", "hostops_apt_proxy", "hostops_targets"})
READS = re.compile(r"\b(" + "|".join(ORDER_NAMES) + r")\b(?!:)")


def role_files() -> list[Path]:
    return sorted(
        path
        for pattern in ("roles/*/*/*.yml", "roles/*/*/*.j2", "roles/*/*/**/*.j2")
        for path in ROOT.glob(pattern)
    )


def test_no_role_reads_the_order() -> None:
    found = sorted(
        f"{path.relative_to(ROOT)}: {match.group(1)}"
        for path in role_files()
        for match in READS.finditer(path.read_text(encoding="utf-8"))
    )
    assert found == []
    # the control: the search finds the map's reading of the order
    assert READS.search(MAP.read_text(encoding="utf-8"))


def role_options() -> dict[str, str]:
    """Every option of every role's argument specs, with its role."""
    options: dict[str, str] = {}
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
        for entry in data["argument_specs"].values():
            for name in entry.get("options", {}):
                options[name] = spec.parents[1].name
    return options


def test_the_map_gives_the_roles_documented_inputs_only() -> None:
    inputs = [
        name
        for name in yaml.safe_load(MAP.read_text(encoding="utf-8"))
        if not name.startswith(("__", "hostops_"))
    ]
    options = role_options()
    assert inputs, "the map gives no role input"
    assert [name for name in inputs if name not in options] == []
    assert {options[name] for name in inputs} >= {"base", "web", "ftp", "mail", "backup"}


@pytest.mark.parametrize(
    ("level", "stack", "by_hand", "roles"),
    [
        (None, None, ["web", "ftp"], ["web", "ftp"]),  # by hand: the playbook's part
        ("none", None, ["web", "ftp"], []),
        ("basic", {"web": {}}, ["web"], []),  # a stack below level custom installs nothing
        ("supervision", None, [], ["security_watch"]),
        ("plesk", None, [], ["plesk", "security_watch"]),
        (
            "custom",
            {"web": {}, "ftp": True, "databases": ["postgresql", "mariadb"], "mail": False},
            [],
            ["web", "ftp", "mariadb", "postgresql", "security_watch"],
        ),
        (
            "custom",
            {"web": None, "ftp": False, "databases": [], "webmail": True},
            [],
            ["webmail", "security_watch"],
        ),
        ("custom", {"mail": "true", "ftp": "false"}, [], ["mail", "security_watch"]),
    ],
)
def test_order_roles(level: Any, stack: Any, by_hand: list[str], roles: list[str]) -> None:
    assert order_roles(level, stack, by_hand) == roles


def test_order_backups_fill_the_contracts_defaults() -> None:
    assert order_backups(None, "dedicated") == {
        "enabled": True,
        "time": "22:00",
        "retention_days": 28,
        "paths": [],
    }
    assert order_backups({"time": "21:30"}, "shared_hosting")["retention_days"] == 7
    assert order_backups({"retention_days": 90, "enabled": False}, "shared_hosting") == {
        "enabled": False,
        "time": "22:00",
        "retention_days": 90,
        "paths": [],
    }


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"backup_time": "24:00"}, "backup_time: '24:00' is not a time HH:MM"),
        ({"backup_files_time": 1320}, "backup_files_time: 1320 is not a time HH:MM"),
        ({"backup_retention_days": 0}, "backup_retention_days: 0 is out of range 1..365"),
        ({"backup_retention_days": 3650}, "backup_retention_days: 3650 is out of range 1..365"),
        ({"backup_retention_days": True}, "backup_retention_days: True is not a number of days"),
        ({"backup_paths": "/etc"}, "backup_paths: expected a list of paths"),
        ({"backup_paths": ["/etc", "/proc/1"]}, "backup_paths: '/proc/1' is under /proc"),
        ({"backup_paths": ["/"]}, "backup_paths: '/' is the whole server"),
    ],
)
def test_backup_inputs_follow_the_orders_rules(inputs: dict[str, Any], problem: str) -> None:
    problems = backup_problems(inputs)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_good_backup_inputs_pass() -> None:
    assert (
        backup_problems(
            {
                "backup_time": "22:00",
                "backup_files_time": "23:00",
                "backup_retention_days": "28",
                "backup_paths": ["/etc", "/var/www"],
            }
        )
        == []
    )


PLAYBOOK = """\
- name: What the map hands the roles
  hosts: all
  connection: local
  gather_facts: false
  vars_files: [{map}]
  vars:
    hostops_playbook_roles: [web, ftp]
  tasks:
    - name: Write the inputs
      ansible.builtin.copy:
        dest: "{out}/{{{{ inventory_hostname }}}}.json"
        mode: "0600"
        content: "{{{{ __inputs | to_json }}}}"
      vars:
        __inputs:
          roles: "{{{{ hostops_order_roles }}}}"
          base_fqdn: "{{{{ base_fqdn }}}}"
          base_unattended_upgrades: "{{{{ base_unattended_upgrades }}}}"
          web_fqdn: "{{{{ web_fqdn }}}}"
          web_php_version: "{{{{ web_php_version }}}}"
          mail_hostname: "{{{{ mail_hostname }}}}"
          mail_antispam: "{{{{ mail_antispam }}}}"
          mail_profile: "{{{{ mail_profile }}}}"
          webmail_domain: "{{{{ webmail_domain }}}}"
          backup_enabled: "{{{{ backup_enabled }}}}"
          backup_time: "{{{{ backup_time }}}}"
          backup_retention_days: "{{{{ backup_retention_days }}}}"
          backup_paths: "{{{{ backup_paths }}}}"
          backup_engines_required: "{{{{ backup_engines_required }}}}"
"""


def map_inputs(tmp_path: Path, extra: dict[str, Any]) -> dict[str, Any]:
    """What the map gives the roles on two hosts, one with hostops_fqdn, one without."""
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "map.yml"
    playbook.write_text(PLAYBOOK.format(map=MAP, out=out))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "named": {"hostops_fqdn": "web01.example.net"},
                        "bare": {},
                    },
                    "vars": {"ansible_python_interpreter": sys.executable},
                }
            }
        )
    )
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    run = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"@{extra_file}",
            str(playbook),
        ],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def test_the_map_hands_an_orders_values_to_the_roles(tmp_path: Path) -> None:
    order = load_order(ROOT / "examples" / "orders" / "custom.yml")
    extra = order.to_vars()
    extra["hostops_backups"] = {**extra["hostops_backups"], "time": "21:15", "paths": ["/srv"]}
    got = map_inputs(tmp_path, extra)
    named, bare = got["named"], got["bare"]
    stack = extra["hostops_stack"]
    roles = [r for r in ("web", "ftp") if stack.get(r) not in (None, False)]
    roles += [db for db in ("mariadb", "postgresql") if db in stack["databases"]]
    roles += [r for r in ("mail", "webmail") if stack.get(r)]
    assert named["roles"] == [*roles, "security_watch"]
    assert named["base_fqdn"] == named["web_fqdn"] == named["mail_hostname"] == "web01.example.net"
    assert named["webmail_domain"] == "webmail.web01.example.net"
    assert bare["base_fqdn"] == "bare"
    assert named["base_unattended_upgrades"] == "remove"  # level custom: hostops patches
    assert named["backup_time"] == "21:15"
    assert named["backup_paths"] == ["/srv"]
    assert named["backup_retention_days"] == order.backups.retention_days
    assert named["backup_engines_required"] == [
        db for db in stack["databases"] if db in ("mariadb", "postgresql")
    ]
    assert named["mail_antispam"] is bool(stack.get("antispam"))
    assert named["mail_profile"] == stack["mail_profile"]


def test_the_map_fills_a_partial_order_with_the_contracts_defaults(tmp_path: Path) -> None:
    """An AWX job may carry part of the order: the contract's defaults fill the rest."""
    got = map_inputs(
        tmp_path,
        {
            "hostops_managed_level": "basic",
            "hostops_service": "shared_hosting",
            "hostops_backups": {"enabled": True},
        },
    )["named"]
    assert got["roles"] == []
    assert got["base_unattended_upgrades"] == "keep"  # level basic: the client's updates
    assert (got["backup_time"], got["backup_retention_days"]) == ("22:00", 7)
    assert got["backup_engines_required"] == []
    assert (got["mail_profile"], got["mail_antispam"]) == ("mailbox", False)


def test_without_an_order_a_playbook_installs_its_part(tmp_path: Path) -> None:
    got = map_inputs(tmp_path, {})["bare"]
    assert got["roles"] == ["web", "ftp"]
    assert got["web_php_version"] == ""
    assert (got["backup_enabled"], got["backup_retention_days"]) == (True, 28)
