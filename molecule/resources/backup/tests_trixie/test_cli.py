"""``hostops backup list | run | restore | verify`` on the scenario's managed server: the
operator's commands, through their playbooks and ansible-runner, as in production (an
inventory naming the server)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backup_helpers import INVENTORY, MANAGED, mariadb, mariadb_checksums, snapshots

ROOT = Path(__file__).resolve().parents[4]
HOSTOPS = Path(sys.executable).parent / "hostops"

# no run started by a timer in the middle of these checks (see conftest.py)
pytestmark = pytest.mark.usefixtures("backup_timers_stopped")


@pytest.fixture(scope="module")
def cli(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    state = tmp_path_factory.mktemp("state")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOSTOPS_STATE_DIR": str(state)}
        return subprocess.run(
            [str(HOSTOPS), "backup", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run


def where() -> list[str]:
    return ["--host", MANAGED, "--inventory", INVENTORY]


def test_bad_arguments_are_refused_before_any_host_is_touched(cli: Any) -> None:
    proc = cli("restore", *where(), "--database", "shop; DROP", "--at", "2099-01-01", "--to", "x")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert any("--at: '2099-01-01' is in the future" in line for line in lines)
    assert any("--database: 'shop; DROP' is not a database name" in line for line in lines)
    assert any("--to: only with --path" in line for line in lines)
    proc = cli("list", "--host", "nowhere.example", "--inventory", INVENTORY)
    assert proc.returncode == 2
    assert "--host: 'nowhere.example' is not a host of the inventory" in proc.stderr


def test_run_and_list(cli: Any, host: Any, baseline: Any) -> None:
    proc = cli("run", *where(), "--kind", "dumps")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dumps: snapshot " in proc.stdout
    proc = cli("list", *where())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    latest = snapshots(host, "dumps")[-1]
    assert latest["short_id"] in proc.stdout
    assert "mariadb:shop" in proc.stdout and "postgresql:crm" in proc.stdout
    assert "TIME (Paris)" in proc.stdout


def test_restore_over_a_live_database_says_what_is_lost_and_needs_yes(
    cli: Any, host: Any, baseline: Any
) -> None:
    source = mariadb_checksums(host, "shop")
    mariadb(host, "INSERT INTO shop.customers (name, created) VALUES ('after the backup', NOW())")
    proc = cli("restore", *where(), "--database", "shop", "--at", "latest")
    assert proc.returncode == 1
    assert "This REPLACES the live database 'shop'" in proc.stdout
    assert "everything written to it after" in proc.stdout
    assert "re-run with --yes" in proc.stderr
    assert mariadb(host, "SELECT COUNT(*) FROM shop.customers WHERE name = 'after the backup'") == [
        ["1"]
    ]
    proc = cli("restore", *where(), "--database", "shop", "--at", "latest", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "restored database 'shop'" in proc.stdout
    assert mariadb_checksums(host, "shop") == source


def test_restore_as_a_new_database_touches_no_live_data(cli: Any, host: Any, baseline: Any) -> None:
    # a date: the last dumps of the day (Paris time) the latest were made, not "today",
    # which names another day once Paris midnight has passed since the last backup
    day = snapshots(host, "dumps")[-1]["time"][:10]
    try:
        proc = cli("restore", *where(), "--database", "crm", "--at", day, "--as", "crm_cli")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "which does not exist yet (no live data is touched)" in proc.stdout
        counts = host.check_output(
            "runuser -u postgres -- psql -Atc 'SELECT count(*) FROM sales.invoices' crm_cli"
        )
        assert counts == "3000"
    finally:
        host.run("runuser -u postgres -- dropdb --if-exists crm_cli")


def test_file_restore_to_another_directory(cli: Any, host: Any, baseline: Any) -> None:
    try:
        proc = cli(
            "restore",
            *where(),
            "--path",
            "/srv/www/site",
            "--to",
            "/srv/site-cli",
            "--at",
            "latest",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        same = host.run("diff -r --no-dereference /srv/www/site /srv/site-cli")
        assert same.rc == 0, same.stdout
    finally:
        host.run("rm -rf /srv/site-cli")


def test_verify_reports_every_table(cli: Any, baseline: Any) -> None:
    proc = cli("verify", *where())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "backups verified:" in proc.stdout
    assert "mariadb     shop" in proc.stdout
    assert "postgresql  crm" in proc.stdout
    assert "mongodb: not verified (mongodump is not installed)" in proc.stdout
