"""The Debian releases each role supports: one table (plugins/module_utils/releases.py),
read by the roles' preflights through a filter and by 'hostops order validate'."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hostops.module_utils.releases import ROLE_RELEASES, order_problems

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def test_the_table_names_every_role_and_no_other() -> None:
    assert sorted(ROLE_RELEASES) == ROLES


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_its_releases_from_the_table(role: str) -> None:
    """No role writes its own list: its preflight's variable is the filter's answer."""
    variables = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())
    value = variables[f"__{role}_supported_releases"]
    assert value == f"{{{{ '{role}' | alteo.hostops.supported_releases }}}}"


def test_no_other_file_lists_releases_per_role() -> None:
    """The rule is written once: no role file holds a literal list of releases."""
    literal = re.compile(r"supported_releases:\s*\[")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "roles").rglob("*.yml")
        if literal.search(path.read_text())
    ]
    assert offenders == []


def filtered(role: str) -> subprocess.CompletedProcess[str]:
    """``'ROLE' | alteo.hostops.supported_releases`` as Ansible renders it."""
    return subprocess.run(
        [
            str(BIN / "ansible"),
            "-i",
            "localhost,",
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={{{{ '{role}' | alteo.hostops.supported_releases }}}}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_CONNECTION": "local",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_filter_answers_from_the_table() -> None:
    for role, expected in (("web", ["13"]), ("base", ["12", "13"]), ("plesk", ["12"])):
        proc = filtered(role)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # "localhost | SUCCESS => {...}"
        result = json.loads(proc.stdout.split("=>", 1)[1])
        assert result["msg"] == expected
    proc = filtered("nginx")
    assert proc.returncode != 0
    assert "'nginx' is not a role of alteo.hostops" in proc.stdout + proc.stderr


def test_order_problems_name_the_field_and_the_release() -> None:
    fields = {"stack.web": "web", "stack.ftp": "ftp"}
    assert order_problems("debian13", fields) == []  # the control
    assert order_problems("debian12", fields) == [
        (
            "stack.web",
            "not available on os 'debian12' (the web role supports Debian 13 only; "
            "see README, 'Debian releases')",
        ),
        (
            "stack.ftp",
            "not available on os 'debian12' (the ftp role supports Debian 13 only; "
            "see README, 'Debian releases')",
        ),
    ]
