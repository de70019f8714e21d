"""Two customers' servers on one backup host (Debian 13): A (<scenario>-1) and B
(<scenario>-2), each with its own REST user, repository and restic password.

- As root on A, with everything A has: listing, reading, deleting or overwriting B's
  repository fails every time (401/403/404 from the REST server), and B's snapshots are
  unchanged, checked with restic on the backup host; A's own nightly run works.
- A is destroyed (its lab host stopped and removed: process, network namespace and root
  file system gone): its databases and files are restored onto B from the backup host with
  A's escrowed credentials ('hostops backup restore --from-host'); the tables give the
  checksums recorded at dump time, the files are byte-identical, and B keeps none of A's
  credentials afterwards. A is gone for good, so this check runs last (conftest.py).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backup_helpers import (
    BACKUP_HOST,
    DUMP_DIR,
    INVENTORY,
    MANAGED,
    OTHER,
    REMOVED,
    REPOSITORY_FILE,
    SCRIPT,
    config,
    fingerprint,
    journal_since,
    mariadb,
    mariadb_checksums,
    now,
    pg_checksums,
    psql,
    repo_ids,
    snapshots,
)

ROOT = Path(__file__).resolve().parents[4]
HOSTOPS = Path(sys.executable).parent / "hostops"
CACERT = "/etc/hostops-backup/backup-ca.pem"

pytestmark = pytest.mark.usefixtures("backup_timers_stopped")

# Requests with A's own REST credentials against B's repository: (method, path in B's
# repository). Every one must be refused.
ATTEMPTS = [
    ("GET", "config"),
    ("HEAD", "config"),
    ("GET", "snapshots/"),
    ("GET", "keys/"),
    ("GET", "data/"),
    ("GET", "index/"),
    ("DELETE", "snapshots/{snapshot}"),
    ("DELETE", "config"),
    ("POST", "snapshots/{snapshot}"),
    ("POST", "config"),
    ("POST", "?create=true"),
]

HTTP_PROBE = """
import base64, json, ssl, sys, urllib.error, urllib.parse, urllib.request
own = urllib.parse.urlsplit(open(sys.argv[1]).read().strip()[len("rest:"):])
auth = base64.b64encode(f"{own.username}:{own.password}".encode()).decode()
ctx = ssl.create_default_context(cafile=sys.argv[2])
codes = []
for method, path in json.loads(sys.argv[3]):
    url = f"https://{own.hostname}:{own.port}{path}"
    data = b"overwritten by A" if method == "POST" else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": "Basic " + auth})
    try:
        codes.append(urllib.request.urlopen(request, context=ctx).status)
    except urllib.error.HTTPError as err:
        codes.append(err.code)
print(json.dumps(codes))
"""


def http(host: Any, requests: list[tuple[str, str]]) -> list[int]:
    """Status codes of *requests* made on *host* with its own REST credentials."""
    result = host.run(
        "python3 -c "
        + shlex.quote(HTTP_PROBE)
        + f" {REPOSITORY_FILE} {CACERT} {shlex.quote(json.dumps(requests))}"
    )
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def b_has_backups(other: Any) -> str:
    result = other.run("systemctl start hostops-backup-dumps.service hostops-backup-files.service")
    assert result.rc == 0, result.stderr
    return config(other)["host"]


def test_server_a_cannot_list_read_delete_or_overwrite_server_bs_repository(
    host: Any, other: Any, backup_host: Any, baseline: Any, b_has_backups: Any
) -> None:
    b_name = b_has_backups
    a_name = config(host)["host"]
    before = repo_ids(backup_host, b_name)
    files_before = backup_host.check_output(
        f"cd /srv/restic-rest/{b_name} && find . -type f -printf '%p %s %T@\\n' | sort"
    )
    assert before
    snapshot = before[0]
    requests = [
        (method, f"/{b_name}/" + path.format(snapshot=snapshot)) for method, path in ATTEMPTS
    ]
    codes = http(host, requests)
    assert all(code in (401, 403, 404) for code in codes), list(zip(requests, codes, strict=True))
    # and with restic itself, A's URL pointed at B's repository: nothing is readable
    url = host.check_output(f"cat {REPOSITORY_FILE}")
    b_url = url.replace(f"/{a_name}/", f"/{b_name}/")
    host.run(f"umask 077; printf '%s\\n' {shlex.quote(b_url)} > /root/b-repository")
    try:
        for args in ("snapshots", "cat config", f"forget {snapshot}", "init"):
            result = host.run(
                "RESTIC_REPOSITORY_FILE=/root/b-repository RESTIC_PASSWORD_FILE="
                f"/etc/hostops-backup/restic-password restic --no-cache --cacert {CACERT} {args}"
            )
            assert result.rc != 0, args
            assert any(code in result.stderr for code in ("401", "403", "404")), result.stderr
    finally:
        host.run("rm -f /root/b-repository")
    # checked on the backup host: B's snapshots and files are exactly as they were
    assert repo_ids(backup_host, b_name) == before
    files_after = backup_host.check_output(
        f"cd /srv/restic-rest/{b_name} && find . -type f -printf '%p %s %T@\\n' | sort"
    )
    assert files_after == files_before
    # positive control: the same requests against A's own repository do reach it
    own = http(host, [("GET", f"/{a_name}/config"), ("GET", f"/{a_name}/snapshots/")])
    assert own == [200, 200]
    # and A's nightly run still works
    assert host.run("systemctl start hostops-backup-dumps.service").rc == 0
    # the repositories' passwords differ too: one server's key would not decrypt another's
    assert backup_host.check_output(
        f"cat /etc/hostops-backup-server/keys/{a_name}"
    ) != backup_host.check_output(f"cat /etc/hostops-backup-server/keys/{b_name}")


@pytest.fixture(scope="module")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HOSTOPS), "backup", *args],
            cwd=ROOT,
            env=dict(os.environ),  # HOSTOPS_STATE_DIR: the scenario's key store
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    return run


def test_restore_from_host_refuses_bad_input_before_any_host_is_touched(cli: Any) -> None:
    where = ["--host", OTHER, "--inventory", INVENTORY, "--at", "latest", "--database", "shop"]
    proc = cli("restore", *where, "--from-host", "lost.nowhere.example")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--from-host: no escrowed credentials for 'lost.nowhere.example'" in proc.stderr
    proc = cli("restore", *where, "--from-host", OTHER)
    assert proc.returncode == 2
    assert f"--from-host: '{OTHER}' is the --host itself" in proc.stderr
    proc = cli("restore", *where, "--from-host", "bad name;")
    assert proc.returncode == 2
    assert "--from-host: 'bad name;' is not a host name" in proc.stderr


def destroy(name: str) -> None:
    """Remove the lab host *name* for good ('hostops lab down NAME'), and check it is gone:
    no process, no network namespace, no root file system, not in the lab's state."""
    from hostops.lab.nspawn import LabPaths, LabState  # noqa: PLC0415 - the lab's own records

    paths = LabPaths.default()
    record = LabState.load(paths.state_file).hosts[name]
    assert Path(record.root).is_dir() and Path(f"/proc/{record.pid}").exists()  # was there
    down = subprocess.run(
        [str(HOSTOPS), "lab", "down", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    REMOVED.add(name)
    assert down.returncode == 0, down.stdout + down.stderr
    assert name not in LabState.load(paths.state_file).hosts
    assert not Path(record.root).exists()
    assert not Path(f"/run/netns/{record.netns}").exists()
    alive = Path(f"/proc/{record.pid}/cmdline")
    assert not alive.exists() or record.netns not in alive.read_text(errors="replace")
    # and nothing answers at its address any more (its SSH port was open before)
    with pytest.raises(OSError):
        socket.create_connection((record.address, 22), timeout=3).close()


@pytest.mark.removes_server_a
@pytest.mark.usefixtures("baseline", "b_has_backups")
def test_a_destroyed_server_is_restored_onto_another_from_the_backup_host(
    cli: Any, host: Any, other: Any, backup_host: Any
) -> None:
    # Run last (it removes A), so after test_backup.py's last check, which applied A's
    # order with backups disabled: A's order is applied again as it was, backups on.
    fact = json.loads(host.file("/etc/ansible/facts.d/backup.fact").content_string)
    if not fact.get("enabled", True):
        converge = subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-playbook"),
                "--inventory",
                INVENTORY,
                # the backup host too: A's preflight needs it in the run (backup_servers)
                "--limit",
                f"{MANAGED},{BACKUP_HOST}",
                str(Path(__file__).resolve().parents[1] / "converge.yml"),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert converge.returncode == 0, converge.stdout[-3000:] + converge.stderr[-2000:]
    a_name = config(host)["host"]
    # what A had, recorded before it is lost: a backup of each kind now (the journal says
    # why when one fails)
    for kind in ("dumps", "files"):
        unit = f"hostops-backup-{kind}.service"
        started = now(host)
        ran = host.run(f"systemctl start {unit}")
        assert ran.rc == 0, journal_since(host, unit, started)
    manifest = json.loads(
        host.check_output(
            f"{SCRIPT} restic dump --tag hostops,dumps latest {DUMP_DIR}/manifest.json"
        )
    )
    a_files = fingerprint(host, "/srv/www")
    a_sources = {name: mariadb_checksums(host, name) for name in ("shop", "wiki")}
    a_crm = pg_checksums(host, "crm")
    b_own = other.check_output(f"cat {REPOSITORY_FILE}")
    a_snapshots = len(snapshots(host))
    # A is destroyed: its lab host stopped and removed
    destroy(MANAGED)
    try:
        where = ["--host", OTHER, "--inventory", INVENTORY, "--from-host", a_name]
        for name in ("shop", "wiki", "crm"):
            proc = cli("restore", *where, "--database", name, "--at", "latest")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert f"from the backup of {a_name} of" in proc.stdout, proc.stdout
        proc = cli(
            "restore", *where, "--path", "/srv/www", "--to", "/srv/restored-www", "--at", "latest"
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the tables: the checksums recorded at dump time, and the source's
        recorded = manifest["engines"]["mariadb"]["databases"]
        for name in ("shop", "wiki"):
            restored = mariadb_checksums(other, name)
            assert restored == a_sources[name]
            assert {t: v[0] for t, v in restored.items()} == {
                t: v["checksum"] for t, v in recorded[name]["tables"].items()
            }
        clusters = manifest["engines"]["postgresql"]["clusters"]
        crm_recorded = next(iter(clusters.values()))["databases"]["crm"]["tables"]
        crm = pg_checksums(other, "crm")
        assert crm == a_crm
        assert {t: v[0] for t, v in crm.items()} == {
            t: v["checksum"] for t, v in crm_recorded.items()
        }
        owners = psql(
            other,
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('public', 'sales')",
            "crm",
        )
        assert owners == [["crm_owner"]]
        # the files: byte-identical, owners and links included
        assert fingerprint(other, "/srv/restored-www") == a_files
        # the run's artifacts on the controller hold neither of A's passwords
        escrow = Path(os.environ["HOSTOPS_STATE_DIR"]) / "backup-keys" / a_name
        runs = Path(os.environ["HOSTOPS_STATE_DIR"]) / "backups" / OTHER / "runs"
        artifacts = [p for p in runs.rglob("*") if p.is_file()]
        assert artifacts
        for secret_file in ("restic-password", "rest-password"):
            secret = (escrow / secret_file).read_text().strip()
            assert len(secret) >= 16
            leaked = [p for p in artifacts if secret in p.read_text(errors="replace")]
            assert leaked == [], (secret_file, leaked)
        # B keeps none of A's credentials, and its own are unchanged
        assert not other.file("/root/.hostops-restore-from").exists
        assert other.check_output(f"cat {REPOSITORY_FILE}") == b_own
        # B's own credentials do not open A's repository
        b_name = config(other)["host"]
        other.run(
            "umask 077; printf '%s\\n' "
            + shlex.quote(b_own.replace(f"/{b_name}/", f"/{a_name}/"))
            + " > /root/a-repository"
        )
        denied = other.run(
            "RESTIC_REPOSITORY_FILE=/root/a-repository RESTIC_PASSWORD_FILE="
            f"/etc/hostops-backup/restic-password restic --no-cache --cacert {CACERT} snapshots"
        )
        assert denied.rc != 0 and "401" in denied.stderr, denied.stderr
        # A's snapshots are all still there
        assert len(repo_ids(backup_host, a_name)) >= a_snapshots > 0
    finally:
        other.run("rm -rf /srv/restored-www /root/a-repository")
        mariadb(other, "DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS wiki")
        other.run("runuser -u postgres -- dropdb --if-exists crm")
