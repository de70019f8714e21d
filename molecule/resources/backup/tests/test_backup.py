"""The backup role on a managed server (Debian 13 and Debian 12) and its backup host (Debian 13).

What the issues' "Must show" asks, on real hosts: the 22:00 Paris timer; restores that
give the source's per-table checksums and byte-identical files; a repository the server
can add to but never prune or rewrite (restic's REST server, append-only, its own user);
retention run by the backup host that keeps exactly the newest N days (28; 7 for shared
hosting); kill -9 during prune; failures restic 0.14 would hide (a missing path, an
unreadable file, a failing dump) made visible, with the earlier backups intact.
Idempotence and check mode are molecule's own steps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backup_helpers import (
    DUMP_DIR,
    EXPECTED_RETENTION,
    INVENTORY,
    MANAGED,
    PROM,
    REPOSITORY_FILE,
    SCRIPT,
    SERVER_SCRIPT,
    config,
    fingerprint,
    journal_since,
    mariadb,
    mariadb_checksums,
    metrics,
    now,
    pg_checksums,
    psql,
    repo_ids,
    repo_snapshots,
    script,
    server_metrics,
    server_script,
    snapshot_ids,
    snapshots,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[4]
LIB_DIR = "/usr/local/lib/hostops-backup"


def test_dumps_timer_fires_at_22_paris_time(host: Any) -> None:
    listed = host.check_output(
        "TZ=Europe/Paris systemctl list-timers --all --no-pager hostops-backup-dumps.timer"
    )
    assert re.search(r"\d{4}-\d{2}-\d{2} 22:00:00 CES?T", listed), listed
    shown = host.check_output(
        "systemctl show hostops-backup-dumps.timer -p TimersCalendar -p Persistent"
    )
    assert "OnCalendar=*-*-* 22:00:00 Europe/Paris" in shown
    assert "Persistent=yes" in shown
    # the next elapse, read in Paris time, is 22:00 within the next day
    nxt = host.check_output(
        "TZ=Europe/Paris systemctl show hostops-backup-dumps.timer "
        "-p NextElapseUSecRealtime --value"
    )
    assert re.fullmatch(r"\w{3} \d{4}-\d{2}-\d{2} 22:00:00 CES?T", nxt), nxt
    # a hung dump is stopped instead of blocking the following nights
    timeout = host.check_output("systemctl show hostops-backup-dumps.service -p TimeoutStartUSec")
    assert timeout == "TimeoutStartUSec=4h"
    assert host.service("hostops-backup-dumps.timer").is_enabled
    assert host.service("hostops-backup-dumps.timer").is_running


def test_files_timer_and_the_backup_hosts_retention_and_check_timers(
    host: Any, backup_host: Any
) -> None:
    listed = host.check_output(
        "TZ=Europe/Paris systemctl list-timers --all --no-pager hostops-backup-files.timer"
    )
    assert re.search(r"\d{4}-\d{2}-\d{2} 23:00:00 CES?T .* hostops-backup-files.timer", listed)
    assert host.service("hostops-backup-files.timer").is_enabled
    timeout = host.check_output(
        "systemctl show hostops-backup-files.service -p TimeoutStartUSec --value"
    )
    assert timeout != "infinity"
    # the server no longer checks nor prunes: the backup host does, on its own timers
    assert not host.file("/etc/systemd/system/hostops-backup-check.timer").exists
    listed = backup_host.check_output(
        "TZ=Europe/Paris systemctl list-timers --all --no-pager 'hostops-backup-server-*'"
    )
    assert re.search(r"06:00:00 CES?T .* hostops-backup-server-prune.timer", listed), listed
    assert re.search(r"Sun \d{4}-\d{2}-\d{2} 05:00:00 CES?T .* hostops-backup-server-check", listed)
    for unit in ("prune", "check", "metrics"):
        assert backup_host.service(f"hostops-backup-server-{unit}.timer").is_enabled
        timeout = backup_host.check_output(
            f"systemctl show hostops-backup-server-{unit}.service -p TimeoutStartUSec --value"
        )
        assert timeout != "infinity"


# From here on the timers are stopped (conftest.py): a run they start would add snapshots
# and hold the script's lock in the middle of a check. The two checks above see them live.
@pytest.mark.usefixtures("backup_timers_stopped")
def test_secret_files_are_root_only(host: Any) -> None:
    for path in (
        "/etc/hostops-backup/restic-password",
        "/etc/hostops-backup/backup.json",
        REPOSITORY_FILE,
    ):
        secret = host.file(path)
        assert secret.user == "root"
        assert secret.mode == 0o600, path
    assert host.file("/etc/hostops-backup").mode == 0o700
    script_file = host.file(SCRIPT)
    assert script_file.user == "root" and script_file.mode == 0o755


def test_the_program_is_the_package_and_nothing_older_is_left(host: Any) -> None:
    """The role installs the package (roles/backup/files/hostops_backup) byte for byte in
    /usr/local/lib/hostops-backup and the launcher at the command's path. prepare.yml put
    an earlier release there on this server (a single-file script, a retired module and
    its bytecode): the script is replaced and the rest removed."""
    files = ROOT / "roles" / "backup" / "files"
    expected = {
        str(p.relative_to(files)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((files / "hostops_backup").rglob("*.py"))
    }
    assert "hostops_backup/cli.py" in expected and "hostops_backup/engines/mariadb.py" in expected
    listing = host.check_output(
        f"cd {LIB_DIR} && find . -mindepth 1 \\( -type f -o -type l \\) -printf '%P\\n' "
        "| sort | xargs -r sha256sum"
    )
    installed = {name: digest for digest, name in (line.split() for line in listing.splitlines())}
    assert installed == expected  # no retired module, no bytecode, nothing missing
    assert not host.file(f"{LIB_DIR}/hostops_backup/__pycache__").exists
    launcher = host.check_output(f"sha256sum {SCRIPT}").split()[0]
    assert launcher == hashlib.sha256((files / "launcher.py").read_bytes()).hexdigest()
    for path in (LIB_DIR, f"{LIB_DIR}/hostops_backup", f"{LIB_DIR}/hostops_backup/engines"):
        directory = host.file(path)
        assert directory.is_directory and directory.user == "root" and directory.mode == 0o755
    # the command runs the package, on this release's Python, and writes no bytecode
    shown = host.run(f"{SCRIPT} --help")
    assert shown.rc == 0 and "restore-db" in shown.stdout, shown.stderr
    assert host.run(f"find {LIB_DIR} -name __pycache__ -o -name '*.pyc'").stdout == ""


@pytest.mark.usefixtures("backup_timers_stopped")
def test_repository_password_is_in_no_file_log_or_journal(host: Any, baseline: Any) -> None:
    password = host.check_output("cat /etc/hostops-backup/restic-password")
    assert len(password) >= 16
    # the REST password: the user info of the repository's URL
    url = host.check_output(f"cat {REPOSITORY_FILE}")
    rest_password = re.fullmatch(r"rest:https://[^:]+:([^@]+)@.+", url).group(1)  # type: ignore[union-attr]  # None fails the test
    assert len(rest_password) >= 16
    host.run(f"umask 077; printf '%s\\n' {shlex.quote(rest_password)} > /root/rest-secret")
    for secret in ("/etc/hostops-backup/restic-password", "/root/rest-secret"):
        found = host.run(
            f"secret={secret}; "
            'grep -rlF -f "$secret" /etc/systemd/system /etc/hostops-backup/backup.json '
            "/etc/ansible /var/lib/hostops-backup /var/lib/prometheus /var/log 2>/dev/null; "
            'journalctl --no-pager -o cat | grep -cF -f "$secret"'
        )
        assert found.stdout.strip() == "0", (secret, found.stdout)
    host.run("rm -f /root/rest-secret")


@pytest.mark.usefixtures("backup_timers_stopped")
def test_backup_host_serves_rest_append_only_private_over_tls(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    cfg = config(host)
    match = re.fullmatch(r"rest:https://([^:/]+):(\d+)/(.+)/", cfg["repository"])
    assert match, cfg["repository"]
    address, port, name = match.groups()
    assert name == cfg["host"]
    # the REST server: Debian's package and unit, append-only, private repositories, TLS
    assert backup_host.service("restic-rest-server").is_running
    assert backup_host.service("restic-rest-server").is_enabled
    args = backup_host.check_output("ps -o args= -C restic-rest-server")
    for flag in ("--append-only", "--private-repos", "--tls", "--htpasswd-file"):
        assert flag in args, args
    # one bcrypt user per server in the users file
    users = backup_host.check_output("grep -v '^#' /etc/restic-rest-server/users.htpasswd")
    assert re.search(rf"^{re.escape(name)}:\$2y\$", users, re.M), users
    # the server checks the backup host's certificate against its CA, and only it
    tls = host.run(
        "python3 -c 'import socket, ssl; "
        'c = ssl.create_default_context(cafile="/etc/hostops-backup/backup-ca.pem"); '
        f's = c.wrap_socket(socket.create_connection(("{address}", {port})), '
        f'server_hostname="{address}"); print(s.version())\''
    )
    assert tls.rc == 0 and tls.stdout.startswith("TLS"), tls.stderr
    # without the pinned CA (the system's trust store) the certificate is refused
    untrusted = host.run(
        "python3 -c 'import socket, ssl; c = ssl.create_default_context(); "
        f's = c.wrap_socket(socket.create_connection(("{address}", {port})), '
        f'server_hostname="{address}")\''
    )
    assert untrusted.rc != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr, untrusted.stderr
    # the old shared SFTP access is gone
    assert not backup_host.file("/etc/ssh/sshd_config.d/50-hostops-backup.conf").exists
    assert not backup_host.file("/etc/ssh/hostops-backup").exists
    # on disk: the REST server's user owns the repository; its password is root's only
    repo = backup_host.file(f"/srv/restic-rest/{name}/config")
    assert repo.user == "restic-rest-server"
    key = backup_host.file(f"/etc/hostops-backup-server/keys/{name}")
    assert (key.user, key.mode) == ("root", 0o600)
    own = host.file("/etc/hostops-backup/restic-password").content_string.strip()
    assert key.content_string.strip() == own
    fact = json.loads(backup_host.file("/etc/ansible/facts.d/backup_server.fact").content_string)
    assert fact["port"] == int(port)


@pytest.mark.usefixtures("backup_timers_stopped")
def test_the_server_cannot_forget_prune_or_delete_its_own_snapshots(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    """Append-only: root on the server adds snapshots, never removes any."""
    name = config(host)["host"]
    before = repo_ids(backup_host, name)
    assert len(before) >= 2
    oldest = snapshots(host)[0]["id"]
    for attempt in (
        f"{SCRIPT} restic forget {oldest}",
        f"{SCRIPT} restic forget --keep-last 1 --group-by host --prune",
    ):
        result = host.run(attempt)
        # restic 0.18 reports the refused removal and still exits 0; 0.14 exits 1
        refused = ("403", "Forbidden", "unable to remove")
        assert any(text in result.stderr for text in refused), (attempt, result.stderr)
    # deleting a snapshot file straight over HTTP with the server's own credentials
    deleted = host.run(
        "python3 - <<'EOF'\n"
        "import base64, ssl, urllib.error, urllib.request, urllib.parse\n"
        f"url = urllib.parse.urlsplit(open('{REPOSITORY_FILE}').read().strip()[5:])\n"
        "auth = base64.b64encode(f'{url.username}:{url.password}'.encode()).decode()\n"
        f"req = urllib.request.Request(f'https://{{url.hostname}}:{{url.port}}{{url.path}}"
        f"snapshots/{oldest}', method='DELETE', headers={{'Authorization': 'Basic ' + auth}})\n"
        "ctx = ssl.create_default_context(cafile='/etc/hostops-backup/backup-ca.pem')\n"
        "try:\n    print(urllib.request.urlopen(req, context=ctx).status)\n"
        "except urllib.error.HTTPError as err:\n    print(err.code)\n"
        "EOF"
    )
    assert deleted.stdout.strip() == "403", deleted.stdout + deleted.stderr
    # checked with restic on the backup host: every snapshot is still there
    assert repo_ids(backup_host, name) == before
    # positive control: the server's nightly run still adds a snapshot
    run = host.run("systemctl start hostops-backup-dumps.service")
    journal = host.run("journalctl --no-pager -o cat -n 20 -u hostops-backup-dumps.service")
    assert run.rc == 0, journal.stdout
    after = repo_ids(backup_host, name)
    assert set(before) < set(after)


@pytest.mark.usefixtures("backup_timers_stopped")
def test_nightly_units_back_up_and_publish_their_result(host: Any) -> None:
    """The units run as the timers start them. Meanwhile every process' arguments and
    environment are sampled: neither the repository password nor the REST password (in
    the repository's URL) shows in any of them."""
    started = now(host)
    probe = host.run(
        """
        set -u
        secret=/root/backup-secrets
        ( umask 077; cat /etc/hostops-backup/restic-password; echo
          sed -E 's#^rest:https://[^:]+:([^@]+)@.*#\\1#' /etc/hostops-backup/repository
        ) > "$secret"
        hits=0 samples=0 restic_seen=0
        ( systemctl start hostops-backup-dumps.service &&
          systemctl start hostops-backup-files.service ) & pid=$!
        while kill -0 "$pid" 2>/dev/null; do
          samples=$((samples + 1))
          pgrep -x restic >/dev/null && restic_seen=1
          for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do
            grep -qaF -f "$secret" "$f" 2>/dev/null && { echo "HIT $f"; hits=1; }
          done
          sleep 0.1
        done
        wait "$pid"; echo "run=$?"
        echo "hits=$hits samples=$samples restic_seen=$restic_seen"
        echo "secrets=$(grep -c . "$secret")"; rm -f "$secret"
        """
    )
    assert "run=0" in probe.stdout, probe.stdout + probe.stderr
    assert "hits=0" in probe.stdout, probe.stdout
    assert "restic_seen=1" in probe.stdout  # the sampling did see restic at work
    assert "secrets=2" in probe.stdout  # both secrets were looked for
    values = metrics(host)
    for kind in ("dumps", "files"):
        assert values[("hostops_backup_last_run_failed", kind)] == 0
        assert values[("hostops_backup_running", kind)] == 0
        assert values[("hostops_backup_last_success_timestamp_seconds", kind)] >= started
        assert values[("hostops_backup_last_size_bytes", kind)] > 0
        assert values[("hostops_backup_last_duration_seconds", kind)] > 0
    assert values[("hostops_backup_retention_days", "")] == EXPECTED_RETENTION
    prom = host.file(PROM)
    assert prom.mode == 0o644
    leftovers = host.check_output(f"ls -A {PROM.rsplit('/', 1)[0]}")
    assert leftovers.split() == ["hostops_backup.prom"]  # written atomically, no temp files
    # the dumps are in the repository, not left on the server
    assert host.check_output(f"find {DUMP_DIR} -type f | wc -l") == "0"
    latest = {s["kind"]: s for s in snapshots(host)}
    assert set(latest) == {"dumps", "files"}
    manifest = json.loads(
        host.check_output(
            f"{SCRIPT} restic dump --tag hostops,dumps latest {DUMP_DIR}/manifest.json"
        )
    )
    assert set(manifest["engines"]) == {"mariadb", "postgresql"}
    assert manifest["skipped"] == {"mongodb": "mongodump is not installed"}
    assert {"shop", "wiki"} <= set(manifest["engines"]["mariadb"]["databases"])


def _manifest(host: Any) -> Any:
    return json.loads(
        host.check_output(
            f"{SCRIPT} restic dump --tag hostops,dumps latest {DUMP_DIR}/manifest.json"
        )
    )


def _pg_databases(manifest: dict[str, Any]) -> Any:
    clusters = manifest["engines"]["postgresql"]["clusters"]
    assert len(clusters) == 1
    return next(iter(clusters.values()))["databases"]


@pytest.mark.usefixtures("backup_timers_stopped")
def test_database_restores_give_the_source_checksums_at_dump_time(host: Any, baseline: Any) -> None:
    manifest = _manifest(host)
    restored = {"mariadb": ["shop", "wiki"], "postgresql": ["crm"]}
    try:
        for engine, names in restored.items():
            for name in names:
                rc, report, err = script(
                    host, "restore-db", "--database", name, "--at", "latest", "--as", f"r_{name}"
                )
                assert rc == 0, err
                assert report["plan"]["engine"] == engine
                assert report["plan"]["replaces_live_data"] is False
        for name in restored["mariadb"]:
            recorded = manifest["engines"]["mariadb"]["databases"][name]["tables"]
            source, copy = mariadb_checksums(host, name), mariadb_checksums(host, f"r_{name}")
            assert set(copy) == set(recorded) and copy
            for table, (checksum, rows) in copy.items():
                assert recorded[table]["stable"] is True
                assert (checksum, rows) == (recorded[table]["checksum"], recorded[table]["rows"])
                assert (checksum, rows) == source[table]
        recorded = _pg_databases(manifest)["crm"]["tables"]
        pg_source, pg_copy = pg_checksums(host, "crm"), pg_checksums(host, "r_crm")
        assert set(pg_copy) == set(recorded) == {"public.contacts", "sales.invoices"}
        for table, (checksum, rows, ordered_rows) in pg_copy.items():
            assert (checksum, rows) == (recorded[table]["checksum"], recorded[table]["rows"])
            assert (checksum, rows, ordered_rows) == pg_source[table]
        # what is not data came back too: the owner, the views
        owners = psql(
            host,
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('public', 'sales')",
            "r_crm",
        )
        assert owners == [["crm_owner"]]
        assert psql(host, "SELECT count(*) FROM sales.unpaid", "r_crm") == [["2000"]]
        view = mariadb(host, "SHOW CREATE VIEW r_shop.big_orders")[0][1]
        assert "`r_shop`.`orders`" in view
    finally:
        host.run("mariadb -e 'DROP DATABASE IF EXISTS r_shop; DROP DATABASE IF EXISTS r_wiki'")
        host.run("runuser -u postgres -- dropdb --if-exists r_crm")


@pytest.mark.usefixtures("backup_timers_stopped")
def test_verify_restores_every_database_into_scratch_and_compares(host: Any, baseline: Any) -> None:
    rc, report, err = script(host, "verify")
    assert rc == 0, err + json.dumps(report)
    assert report["ok"] is True
    checked = {(d["engine"], d["database"]): d for d in report["databases"]}
    assert {("mariadb", "shop"), ("mariadb", "wiki"), ("postgresql", "crm")} <= set(checked)
    assert len(checked[("mariadb", "shop")]["tables"]) == 2
    assert len(checked[("postgresql", "crm")]["tables"]) == 2
    for database in checked.values():
        assert all(t["status"] == "ok" for t in database["tables"]), database
    # the scratch databases are gone, the live ones untouched
    assert mariadb(host, "SHOW DATABASES LIKE 'hostops\\_verify\\_%'") == []
    assert psql(host, "SELECT datname FROM pg_database WHERE datname LIKE 'hostops%'") == []
    assert metrics(host)[("hostops_backup_last_run_failed", "verify")] == 0


@pytest.mark.usefixtures("backup_timers_stopped")
def test_file_restore_is_byte_identical(host: Any, baseline: Any) -> None:
    try:
        rc, _, err = script(
            host,
            "restore-files",
            "--path",
            "/srv/www",
            "--to",
            "/srv/restored-www",
            "--at",
            "latest",
        )
        assert rc == 0, err
        assert fingerprint(host, "/srv/restored-www") == fingerprint(host, "/srv/www")
        assert host.file("/srv/restored-www/site/config.php").user == "www-data"
        assert host.file("/srv/restored-www/current").linked_to == "/srv/restored-www/site"
        rc, _, err = script(
            host,
            "restore-files",
            "--path",
            "/srv/data/report.csv",
            "--to",
            "/root/report.csv",
            "--at",
            "latest",
        )
        assert rc == 0, err
        restored = host.file("/root/report.csv").sha256sum
        assert restored == host.file("/srv/data/report.csv").sha256sum
    finally:
        host.run("rm -rf /srv/restored-www /root/report.csv")


@pytest.mark.usefixtures("backup_timers_stopped")
def test_restoring_over_live_data_needs_confirmation_and_loses_what_came_after(
    host: Any, baseline: Any
) -> None:
    before = fingerprint(host, "/srv/www")
    host.run(
        "echo 'changed after the backup' > /srv/www/site/index.html; "
        "echo 'new after the backup' > /srv/www/site/new.html"
    )
    changed = fingerprint(host, "/srv/www")
    rc, report, _ = script(
        host, "restore-files", "--path", "/srv/www", "--to", "/srv/www", "--at", "latest"
    )
    assert rc == 4  # refused: it would replace live data
    assert "losing every change made since" in report["error"]
    assert fingerprint(host, "/srv/www") == changed  # untouched
    rc, report, err = script(
        host,
        "restore-files",
        "--path",
        "/srv/www",
        "--to",
        "/srv/www",
        "--at",
        "latest",
        "--replace",
    )
    assert rc == 0, err
    assert report["plan"]["replaces_live_data"] is True
    assert fingerprint(host, "/srv/www") == before  # the new file is gone, the old one back

    recorded = _manifest(host)["engines"]["mariadb"]["databases"]["shop"]["tables"]
    mariadb(host, "UPDATE shop.customers SET name = 'written later' WHERE id <= 10")
    rc, report, _ = script(host, "restore-db", "--database", "shop", "--at", "latest")
    assert rc == 4
    assert "loses everything written to it since" in report["error"]
    assert mariadb(host, "SELECT COUNT(*) FROM shop.customers WHERE name = 'written later'") == [
        ["10"]
    ]
    rc, report, err = script(
        host, "restore-db", "--database", "shop", "--at", "latest", "--replace"
    )
    assert rc == 0, err
    restored = mariadb_checksums(host, "shop")
    assert {t: v[0] for t, v in restored.items()} == {t: v["checksum"] for t, v in recorded.items()}


@pytest.mark.usefixtures("backup_timers_stopped")
def test_a_missing_path_fails_the_run_visibly(host: Any, baseline: Any) -> None:
    """restic 0.14 alone skips a missing path and reports success."""
    before_ids = snapshot_ids(host, "files")
    before = metrics(host).get(("hostops_backup_last_success_timestamp_seconds", "files"))
    started = now(host)
    host.run("mv /srv/data /srv/data.moved")
    try:
        result = host.run("systemctl start hostops-backup-files.service")
    finally:
        host.run("mv /srv/data.moved /srv/data")
    assert result.rc != 0
    journal = journal_since(host, "hostops-backup-files.service", started, "missing: /srv/data")
    assert "missing: /srv/data" in journal, journal
    values = metrics(host)
    assert values[("hostops_backup_last_run_failed", "files")] == 1
    assert values.get(("hostops_backup_last_success_timestamp_seconds", "files")) == before
    assert snapshot_ids(host, "files") == before_ids


@pytest.mark.usefixtures("backup_timers_stopped")
def test_an_unreadable_file_fails_the_run_and_leaves_no_snapshot(host: Any, baseline: Any) -> None:
    """restic exits 3 ("incomplete snapshot created"): a failure here, the snapshot removed."""
    cfg = config(host)
    cfg["paths"] = ["/srv/www", "/proc/1/mem"]  # a file even root cannot read (EIO)
    host.run(f"umask 077; echo {shlex.quote(json.dumps(cfg))} > /root/unreadable.json")
    before_ids = snapshot_ids(host, "files")
    rc, report, err = script(host, "run", "--kind", "files", config="/root/unreadable.json")
    host.run("rm -f /root/unreadable.json")
    assert rc == 1
    assert "could not be read (exit status 3" in report["error"], err
    assert "/proc/1/mem" in report["error"]
    assert snapshot_ids(host, "files") == before_ids


@pytest.mark.usefixtures("backup_timers_stopped")
def test_a_failing_dump_fails_the_run_visibly_and_the_next_run_succeeds(
    host: Any, baseline: Any
) -> None:
    before_ids = snapshot_ids(host, "dumps")
    before = metrics(host)[("hostops_backup_last_success_timestamp_seconds", "dumps")]
    started = now(host)
    # a view whose table is gone: mariadb-dump fails on it (exit status 2)
    mariadb(
        host,
        "CREATE DATABASE broken; CREATE TABLE broken.t (a INT); "
        "CREATE VIEW broken.v AS SELECT a FROM broken.t; DROP TABLE broken.t",
    )
    try:
        result = host.run("systemctl start hostops-backup-dumps.service")
    finally:
        mariadb(host, "DROP DATABASE broken")
    assert result.rc != 0
    expected = ("mariadb-dump broken failed", "nothing uploaded")
    journal = journal_since(host, "hostops-backup-dumps.service", started, *expected)
    assert "mariadb-dump broken failed" in journal, journal
    assert "nothing uploaded" in journal, journal
    values = metrics(host)
    assert values[("hostops_backup_last_run_failed", "dumps")] == 1
    assert values[("hostops_backup_last_success_timestamp_seconds", "dumps")] == before
    assert snapshot_ids(host, "dumps") == before_ids
    # fixed: the next run succeeds and clears the failure
    assert host.run("systemctl start hostops-backup-dumps.service").rc == 0
    values = metrics(host)
    assert values[("hostops_backup_last_run_failed", "dumps")] == 0
    assert values[("hostops_backup_last_success_timestamp_seconds", "dumps")] > before
    assert snapshot_ids(host, "dumps")[-1] not in before_ids


@pytest.mark.usefixtures("backup_timers_stopped")
def test_retention_below_one_day_is_refused(host: Any, backup_host: Any, baseline: Any) -> None:
    """restic reads --keep-daily 0 as "no policy" and keeps everything, exit status 0."""
    name = config(host)["host"]
    before = repo_ids(backup_host, name)
    server_cfg = json.loads(backup_host.check_output("cat /etc/hostops-backup-server/server.json"))
    server_cfg["repos_dir"] = "/root/bad-repos"
    backup_host.run(
        "umask 077; mkdir -p /root/bad-repos && "
        f"echo {shlex.quote(json.dumps(server_cfg))} > /root/bad-server.json"
    )
    try:
        for bad in (0, -1, True, "28"):
            backup_host.run(
                f"echo {shlex.quote(json.dumps({'retention_days': bad}))} "
                f"> /root/bad-repos/{name}.json"
            )
            result = backup_host.run(f"{SERVER_SCRIPT} --config /root/bad-server.json prune")
            assert result.rc == 2, bad
            assert "retention_days must be 1 to 3650" in result.stderr
    finally:
        backup_host.run("rm -rf /root/bad-repos /root/bad-server.json")
    assert repo_ids(backup_host, name) == before


@pytest.mark.usefixtures("backup_timers_stopped")
def test_retention_on_the_backup_host_keeps_exactly_the_newest_days(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    """40 daily snapshots dated in the past, made on the backup host: its retention run
    keeps the newest N days of the order (28; 7 for shared hosting)."""
    cfg = config(host)
    name = cfg["host"]
    retention = json.loads(
        backup_host.check_output(f"cat /etc/hostops-backup-server/repos/{name}.json")
    )
    assert retention["retention_days"] == EXPECTED_RETENTION
    # the days are counted in the zone restic reads --time in (the script sets TZ)
    zone = shlex.quote(cfg["timezone"])
    made = backup_host.run(
        "seq 1 40 | xargs -P 4 -I{} sh -c "
        + shlex.quote(
            f"{SERVER_SCRIPT} restic {name} backup --quiet --host {name} --tag hostops "
            f'--tag files --time "$(TZ={zone} date -d "-{{}} day" "+%F 12:00:00")" '
            "/usr/share/doc/restic/copyright"
        )
    )
    assert made.rc == 0, made.stderr
    listed = snapshots(host, "files")
    assert len(listed) >= 40
    newest_by_day: dict[str, str] = {}
    for snap in sorted(listed, key=lambda s: s["time"]):
        newest_by_day[snap["time"][:10]] = snap["id"]  # times are Paris time
    days = sorted(newest_by_day)
    expected = {newest_by_day[day] for day in days[-EXPECTED_RETENTION:]}

    result = backup_host.run("systemctl start hostops-backup-server-prune.service")
    assert result.rc == 0, result.stderr
    kept = snapshots(host, "files")
    assert len(kept) == EXPECTED_RETENTION
    assert {s["id"] for s in kept} == expected
    kept_days = sorted(s["time"][:10] for s in kept)
    assert kept_days == days[-EXPECTED_RETENTION:]
    first = dt.date.fromisoformat(kept_days[0])
    assert (dt.date.fromisoformat(kept_days[-1]) - first).days == EXPECTED_RETENTION - 1
    values = server_metrics(backup_host)
    assert values[("hostops_backup_repository_snapshots", name, "files")] == EXPECTED_RETENTION
    assert values[("hostops_backup_repository_prune_failed", name, "")] == 0
    assert values[("hostops_backup_repository_retention_days", name, "")] == EXPECTED_RETENTION


PRUNE = "^restic .* prune"


@pytest.mark.usefixtures("backup_timers_stopped")
def test_kill_9_during_prune_leaves_a_sound_repository_and_the_next_prune_succeeds(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    name = config(host)["host"]
    # something for prune to remove: a snapshot of random data, forgotten on the backup host
    host.run("head -c 64M /dev/urandom > /root/prune-me.bin")
    made = host.run(
        f"{SCRIPT} restic backup --quiet --host {name} --tag prune-me /root/prune-me.bin"
    )
    host.run("rm -f /root/prune-me.bin")
    assert made.rc == 0, made.stderr
    doomed = [
        snap["id"]
        for snap in repo_snapshots(backup_host, name)
        if "prune-me" in (snap.get("tags") or [])
    ]
    assert len(doomed) == 1
    backup_host.check_output(f"{SERVER_SCRIPT} restic {name} forget {doomed[0]}")
    kept = repo_ids(backup_host, name)
    try:
        locks = f"/srv/restic-rest/{name}/locks"
        # On the backup host itself (no round trips): start the retention run, and freeze
        # restic prune the moment its lock is in the repository, so kill -9 lands while
        # prune holds it (a slice-by-slice freeze could miss a quick prune altogether).
        frozen = backup_host.run(
            "systemctl start --no-block hostops-backup-server-prune.service; "
            f"for i in $(seq 12000); do "
            f"if [ -n \"$(ls -A {locks} 2>/dev/null)\" ] && pkill -STOP -f '{PRUNE}'; "
            "then exit 0; fi; sleep 0.01; done; exit 1"
        )
        assert frozen.rc == 0, "the retention run never reached restic prune holding its lock"
        locks = f"find {locks} -type f | wc -l"
        assert backup_host.check_output(locks) != "0", "prune never locked the repository"
        backup_host.run("systemctl kill --signal=SIGKILL hostops-backup-server-prune.service")
        assert wait_for(
            lambda: (
                backup_host.run(
                    "systemctl is-active hostops-backup-server-prune.service"
                ).stdout.strip()
                in ("failed", "inactive")
            ),
            timeout=30,
        )
        assert backup_host.check_output(locks) != "0"  # a stale lock, as after a crash
        values = server_metrics(backup_host)
        assert values[("hostops_backup_server_run_failed", "", "prune")] == 1  # ExecStopPost
    finally:
        backup_host.run(f"pkill -CONT -f '{PRUNE}'")
    rc, report, err = server_script(backup_host, "check", "--repo", name, "--subset", "100%")
    assert rc == 0, err + json.dumps(report)
    result = backup_host.run("systemctl start hostops-backup-server-prune.service")
    assert result.rc == 0, result.stderr
    assert server_metrics(backup_host)[("hostops_backup_server_run_failed", "", "prune")] == 0
    assert repo_ids(backup_host, name) == kept
    rc, report, err = server_script(backup_host, "check", "--repo", name, "--subset", "100%")
    assert rc == 0, err + json.dumps(report)


@pytest.mark.usefixtures("backup_timers_stopped")
def test_a_repository_of_the_old_shared_layout_migrates_with_its_snapshots(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    """The old layout: one repository per server under /srv/restic, written over SFTP by
    the shared user, encrypted with the shared password. 'hostops-backup-server migrate'
    copies its snapshots into the server's new repository (restic copy), once however
    often it runs, and a restore from before the migration works from the server."""
    name = config(host)["host"]
    old = f"/srv/restic/{name}"
    document = "/usr/share/doc/restic/copyright"
    setup = backup_host.run(
        "set -e; umask 077; mkdir -p /srv/restic && chmod 0755 /srv/restic; "
        "printf 'the-old-shared-password-0123456789' > /root/old-password; "
        f"restic -r {old} --password-file /root/old-password init >/dev/null; "
        f"restic -r {old} --password-file /root/old-password backup --quiet --host {name} "
        f"--tag hostops --tag files --time \"$(date -d '-100 day' '+%F 12:00:00')\" {document}; "
        "chown -R backup:backup " + old
    )
    assert setup.rc == 0, setup.stderr
    try:
        for _ in range(2):  # the second run copies nothing again
            rc, report, err = server_script(
                backup_host, "migrate", name, "--legacy-password-file", "/root/old-password"
            )
            assert rc == 0, err + json.dumps(report)
        migrated = [s for s in snapshots(host, "files") if s["paths"] == [document]]
        limit = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
        old_ones = [s for s in migrated if dt.datetime.fromisoformat(s["time"]) < limit]
        assert len(old_ones) == 1, migrated
        # restored from the server, through the REST server, with its own credentials
        rc, _, err = script(
            host,
            "restore-files",
            "--path",
            document,
            "--to",
            "/root/migrated-copyright",
            "--snapshot",
            old_ones[0]["id"],
        )
        assert rc == 0, err
        restored = host.file("/root/migrated-copyright").sha256sum
        assert restored == backup_host.file(document).sha256sum
    finally:
        host.run("rm -f /root/migrated-copyright")
        backup_host.run(f"rm -rf {old} /root/old-password")


@pytest.mark.usefixtures("backup_timers_stopped")
def test_repository_check_reads_a_part_of_the_data(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    name = config(host)["host"]
    started = now(backup_host)
    assert backup_host.run("systemctl start hostops-backup-server-check.service").rc == 0
    checked = re.compile(rf"{re.escape(name)}: repository OK \(data subset [1-4]/4\)")
    journal = journal_since(backup_host, "hostops-backup-server-check.service", started, checked)
    assert checked.search(journal), journal
    values = server_metrics(backup_host)
    assert values[("hostops_backup_repository_check_failed", name, "")] == 0
    assert values[("hostops_backup_repository_last_check_timestamp_seconds", name, "")] >= started
    assert values[("hostops_backup_repository_size_bytes", name, "")] > 0
    last = values[("hostops_backup_repository_last_snapshot_timestamp_seconds", name, "dumps")]
    assert last > 0


@pytest.mark.usefixtures("backup_timers_stopped")
def test_a_damaged_pack_is_found_by_the_check_and_published(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    """A pack file damaged on the backup host's disk: the check (reading all the data, as
    the weekly one does over its four weeks) fails, says so in its metrics (the alert
    BackupRepositoryCheckFailed fires on them), and passes again once it is repaired."""
    name = config(host)["host"]
    data = f"/srv/restic-rest/{name}/data"
    pack = backup_host.check_output(
        f"find {data} -type f -printf '%s %p\\n' | sort -n | tail -n 1 | cut -d' ' -f2"
    )
    assert pack.startswith(data), pack
    backup_host.check_output(f"cp -p {pack} /root/pack.orig")
    try:
        # flip 16 bytes in the middle of the pack
        damaged = backup_host.run(
            f"size=$(stat -c %s {pack}); "
            f"head -c 16 /dev/urandom | dd of={pack} bs=1 seek=$((size / 2)) conv=notrunc "
            "status=none"
        )
        assert damaged.rc == 0, damaged.stderr
        rc, report, err = server_script(backup_host, "check", "--repo", name, "--subset", "100%")
        assert rc == 1, err + json.dumps(report)
        assert f"{name}: restic check (100%) failed" in report["error"]
        values = server_metrics(backup_host)
        assert values[("hostops_backup_repository_check_failed", name, "")] == 1
        assert values[("hostops_backup_server_run_failed", "", "check")] == 1
    finally:
        backup_host.run(f"cp -p /root/pack.orig {pack} && rm -f /root/pack.orig")
    rc, report, err = server_script(backup_host, "check", "--repo", name, "--subset", "100%")
    assert rc == 0, err + json.dumps(report)
    assert server_metrics(backup_host)[("hostops_backup_repository_check_failed", name, "")] == 0


def test_an_order_without_backups_stops_the_timers_and_keeps_the_backups(host: Any) -> None:
    """Last: the order is changed to backups.enabled: false and applied again."""
    # the earlier checks stopped the timers (backup_timers_stopped): running again, the
    # playbook has something to stop
    for kind in ("dumps", "files"):
        assert host.run(f"systemctl start hostops-backup-{kind}.timer").rc == 0
        assert host.service(f"hostops-backup-{kind}.timer").is_running
    before = snapshot_ids(host, "dumps")
    playbook = Path(__file__).resolve().parents[1] / "converge.yml"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--inventory",
            INVENTORY,
            "--limit",
            MANAGED,
            "--extra-vars",
            "backup_enabled=false",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for kind in ("dumps", "files"):
        timer = host.service(f"hostops-backup-{kind}.timer")
        assert not timer.is_enabled and not timer.is_running
    fact = json.loads(host.file("/etc/ansible/facts.d/backup.fact").content_string)
    assert fact == {"enabled": False}
    # the repository is left as it was: every snapshot is still there (a timer that
    # fired before the playbook stopped it may have added one, never removed any)
    assert set(before) <= set(snapshot_ids(host, "dumps"))
