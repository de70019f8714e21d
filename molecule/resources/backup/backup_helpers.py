"""Helpers of the backup scenarios' checks: names, the script, snapshots, metrics, SQL."""

# The SQL here names the scenario's own sample databases and the tables the server lists.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
import re
import shlex
import time
from typing import Any

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "backup-trixie")
INVENTORY = os.environ.get("HOSTOPS_LAB_INVENTORY_FILE", "")
MANAGED = f"{SCENARIO}-1"  # server A
OTHER = f"{SCENARIO}-2"  # server B (Debian 13 scenario only)
BACKUP_HOST = f"{SCENARIO}-bh1"
SERVICE = os.environ.get("HOSTOPS_TEST_SERVICE", "dedicated_server")
# What the order gives (contract §4.6): 28 days, 7 for shared hosting.
EXPECTED_RETENTION = 7 if SERVICE == "shared_hosting" else 28
SCRIPT = "/usr/local/sbin/hostops-backup"
SERVER_SCRIPT = "/usr/local/sbin/hostops-backup-server"
SERVER_PROM = "/var/lib/prometheus/node-exporter/hostops_backup_server.prom"
REPOSITORY_FILE = "/etc/hostops-backup/repository"
CONFIG = "/etc/hostops-backup/backup.json"
PROM = "/var/lib/prometheus/node-exporter/hostops_backup.prom"
DUMP_DIR = "/var/backups/hostops/dumps"
# Lab hosts a check removed for good (server A, destroyed last): nothing runs there again.
REMOVED: set[str] = set()


def script(host: Any, *args: str, config: str | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the backup script with --json: (exit status, its JSON report, stderr)."""
    extra = ["--config", config] if config else []
    result = host.run(shlex.join([SCRIPT, *extra, "--json", *args]))
    try:
        report = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        report = {"unparsed": result.stdout}
    return result.rc, report, result.stderr


def server_script(host: Any, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the backup host's script with --json: (exit status, its report, stderr)."""
    result = host.run(shlex.join([SERVER_SCRIPT, "--json", *args]))
    try:
        report = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        report = {"unparsed": result.stdout}
    return result.rc, report, result.stderr


def repo_snapshots(backup_host: Any, name: str) -> list[dict[str, Any]]:
    """Every snapshot of a repository, read with restic on the backup host itself."""
    out = backup_host.check_output(
        f"{SERVER_SCRIPT} restic {shlex.quote(name)} snapshots --json --no-lock"
    )
    return json.loads(out) or []


def repo_ids(backup_host: Any, name: str) -> list[str]:
    return sorted(s["id"] for s in repo_snapshots(backup_host, name))


def server_metrics(backup_host: Any) -> dict[tuple[str, str, str], float]:
    """The backup host's textfile metrics: {(metric, repository, kind): value}."""
    values = {}
    for line in backup_host.check_output(f"cat {SERVER_PROM}").splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        values[(name, found.get("repository", ""), found.get("kind", ""))] = float(value)
    return values


def config(host: Any) -> dict[str, Any]:
    return json.loads(host.check_output(f"cat {CONFIG}"))


def snapshots(host: Any, kind: str | None = None) -> list[dict[str, Any]]:
    rc, report, err = script(host, "snapshots")
    assert rc == 0, err
    found = report["snapshots"]
    return [s for s in found if kind is None or s["kind"] == kind]


def snapshot_ids(host: Any, kind: str) -> list[str]:
    return [s["id"] for s in snapshots(host, kind)]


def metrics(host: Any) -> dict[tuple[str, str], float]:
    """The textfile collector's view: {(metric, kind): value}."""
    values = {}
    for line in host.check_output(f"cat {PROM}").splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        name, _, labels = name_labels.partition("{")
        kind = labels.split('kind="')[1].split('"')[0] if "kind=" in labels else ""
        values[(name, kind)] = float(value)
    return values


def journal_since(
    host: Any, unit: str, since: float, *expected: str | re.Pattern[str], timeout: float = 30
) -> str:
    """The unit's journal since *since*. journald may write a unit's last lines a moment
    after the unit has exited: read again (bounded) until every *expected* text or
    pattern shows, and return the last reading (the caller asserts on it)."""
    command = f"journalctl --no-pager -o cat -u {unit} --since @{int(since) - 1} 2>&1 || true"
    text = host.check_output(command)

    def complete() -> bool:
        nonlocal text
        text = host.check_output(command)
        return all(e.search(text) if isinstance(e, re.Pattern) else e in text for e in expected)

    if expected:
        wait_for(complete, timeout, step=0.5)
    return text


def now(host: Any) -> float:
    return float(host.check_output("date +%s.%N"))


def mariadb(host: Any, sql: str) -> list[list[str]]:
    out = host.check_output(f"mariadb --batch --skip-column-names --raw -e {shlex.quote(sql)}")
    return [line.split("\t") for line in out.splitlines() if line]


def psql(host: Any, sql: str, database: str = "postgres") -> list[list[str]]:
    out = host.check_output(
        "runuser -u postgres -- psql -X -q -A -t -F '|' -v ON_ERROR_STOP=1 "
        f"-d {shlex.quote(database)} -c {shlex.quote(sql)}"
    )
    return [line.split("|") for line in out.splitlines() if line]


def mariadb_checksums(host: Any, database: str) -> dict[str, tuple[str, int]]:
    """CHECKSUM TABLE ... EXTENDED and the row count of every base table, by this test."""
    tables = [
        row[0]
        for row in mariadb(
            host,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"'{database}' AND table_type = 'BASE TABLE' ORDER BY 1",
        )
    ]
    result = {}
    for table in tables:
        checksum = mariadb(host, f"CHECKSUM TABLE `{database}`.`{table}` EXTENDED")[0][1]
        count = int(mariadb(host, f"SELECT COUNT(*) FROM `{database}`.`{table}`")[0][0])
        result[table] = (checksum, count)
    return result


# The script's definition for PostgreSQL (md5 over the rows' md5s, in C order), written
# out again here, and a second one of the test's own (md5 over the ordered rows' text).
PG_CHECKSUMS = """
SELECT format('%s.%s', schemaname, tablename),
       (xpath('/row/c/text()', query_to_xml(format(
          'SELECT count(*) AS c FROM ONLY %I.%I', schemaname, tablename),
          false, true, '')))[1]::text,
       (xpath('/row/h/text()', query_to_xml(format(
          'SELECT md5(coalesce(string_agg(h, '''' ORDER BY h COLLATE "C"), '''')) AS h
             FROM (SELECT md5(t::text) AS h FROM ONLY %I.%I AS t) AS s',
          schemaname, tablename), false, true, '')))[1]::text,
       (xpath('/row/h/text()', query_to_xml(format(
          'SELECT md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text COLLATE "C"), ''''))
             AS h FROM ONLY %I.%I AS t', schemaname, tablename), false, true, '')))[1]::text
FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""


def pg_checksums(host: Any, database: str) -> dict[str, tuple[str, int, str]]:
    """Per table: (the script's md5, rows, an independent md5 of the ordered rows)."""
    rows = psql(host, PG_CHECKSUMS, database)
    return {row[0]: (row[2], int(row[1]), row[3]) for row in rows}


def fingerprint(host: Any, path: str) -> str:
    """Every entry under *path*: type, mode, owner, link target and content hash."""
    quoted = shlex.quote(path)
    return host.check_output(
        f"cd {quoted} && find . -printf '%y %m %u:%g %p -> %l\\n' | LC_ALL=C sort && "
        "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum"
    )


def wait_for(predicate: Any, timeout: float, step: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
