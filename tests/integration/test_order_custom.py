"""The custom managed example order provisioned end to end on fresh lab hosts (needs root).

examples/orders/custom.yml as it is: web, FTP, MariaDB and PostgreSQL, mail with
webmail, nightly backups and monitoring. 'hostops order apply --lab' boots the order's
server and a backup host; the monitoring server is a lab host set up beforehand with
playbooks/monitoring-server.yml, as ops would have one. One story, in order: check mode
on the fresh hosts changes nothing; the apply succeeds and writes the delivery note; a
second apply changes nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import host_state
import pytest
from lab_helpers import monitoring_server, owned_prefixes

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ORDER = ROOT / "examples" / "orders" / "custom.yml"
ORDER_ID = "BDC-2027-0103"
PREFIX = "bdc-2027-0103-"
SERVER_HOST = f"{PREFIX}1"
BACKUP_HOST = f"{PREFIX}backup1"
MON_PREFIX = "custmon-"
MON = f"{MON_PREFIX}1"


def fingerprint(cli: Any, host: str) -> dict[str, list[str]]:
    return host_state.of_lab_host(cli, host)


@pytest.fixture(scope="module")
def hosts(cli: Any, root_user: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    inventory = tmp_path_factory.mktemp("custom") / "monitoring.yml"
    with owned_prefixes(cli, MON_PREFIX, PREFIX):
        monitoring_server(cli, MON_PREFIX, inventory)
        # the order's hosts, booted fresh the way 'order apply --lab' boots them
        cli("lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", PREFIX, check=True)
        cli(
            "lab",
            "up",
            "--hosts",
            "1",
            "--release",
            "trixie",
            "--prefix",
            f"{PREFIX}backup",
            check=True,
        )
        yield


def apply(cli: Any, *extra: str) -> Any:
    return cli(
        "order", "apply", str(ORDER), "--lab", "--monitoring-server", MON, *extra, timeout=2400
    )


def test_check_mode_on_fresh_hosts_changes_nothing(cli: Any, hosts: None, state_dir: Path) -> None:
    before = {h: fingerprint(cli, h) for h in (SERVER_HOST, BACKUP_HOST)}
    proc = apply(cli, "--check")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    predicted = int(proc.stdout.split("check mode predicts ")[1].split()[0])
    assert predicted > 0
    for h in (SERVER_HOST, BACKUP_HOST):
        assert host_state.differences(before[h], fingerprint(cli, h)) == [], h


def test_apply_provisions_the_whole_order(cli: Any, hosts: None, state_dir: Path) -> None:
    proc = apply(cli)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    note = json.loads((state_dir / "orders" / ORDER_ID / "delivery-note.json").read_text())
    server = note["servers"][0]
    assert server["hostname"] == "web01.martin.example"
    # --lab maps the order's server onto its lab host: the note gives the address it has
    status = cli("lab", "status", check=True).stdout
    address = next(line.split()[2] for line in status.splitlines() if line.startswith(SERVER_HOST))
    assert server["address"] == address
    software = server["software"]
    for package in (
        "nginx",
        "apache2",
        "php8.4-fpm",
        "mariadb-server",
        "postgresql-17",
        "postfix",
        "dovecot-core",
        "proftpd-core",
        "roundcube-core",
        "restic",
        "prometheus-node-exporter",
    ):
        assert package in software, (package, software)
    assert note["backups"] == {"schedule": "daily at 22:00 Europe/Paris", "retention_days": 28}
    assert note["monitoring"]["tcp_checks"] == ["web01.martin.example:25"]
    markdown = (state_dir / "orders" / ORDER_ID / "delivery-note.md").read_text()
    assert f"| web01.martin.example | {address} |" in markdown
    assert f"Date of entry into service: {note['entry_into_service']}" in markdown
    # the services answer on the server itself
    probe = cli(
        "lab",
        "ssh",
        SERVER_HOST,
        "--",
        "systemctl is-active nginx apache2 php8.4-fpm mariadb postgresql postfix"
        " dovecot proftpd prometheus-node-exporter; systemctl list-timers --all"
        " --no-legend | grep -c hostops-backup",
        check=True,
    )
    states = probe.stdout.split()
    assert states[:9] == ["active"] * 9, probe.stdout
    assert int(states[9]) >= 2, probe.stdout


def test_second_apply_changes_nothing(cli: Any, hosts: None, state_dir: Path) -> None:
    proc = apply(cli)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr
    assert f"order {ORDER_ID}: 0 change(s)" in proc.stdout, proc.stdout[-3000:]
