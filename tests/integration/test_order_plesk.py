"""An order of managed level plesk, applied with ``--lab`` as far as it can go here.

examples/orders/plesk.yml validates and ``hostops order apply --lab`` provisions its
server, a real Debian 12 lab host: the base role, the order recorded on the server. Then
the plesk role stops in its preflight, because Plesk's installer cannot be reached from our
machines (the lab hosts have no route and no resolver beyond the lab): the failure names
the installer source, lists every other problem of the run's inputs at once (this lab
inventory holds none of Plesk's secrets), and nothing after it runs (no backups, no
monitoring registration, no delivery note; the backup host and the monitoring server had
only their facts read, at the run's start). Plesk is NOT installed here, and nothing in
this module claims it (see docs/plesk.md and tests/integration/test_plesk_standin.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import owned_prefixes

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "examples" / "orders" / "plesk.yml"
ORDER_ID = "BDC-2027-0105"
PREFIX = "bdc-2027-0105-"  # the order's lab hosts: its server and its backup host
LAB_HOST = f"{PREFIX}1"
BACKUP_HOST = f"{PREFIX}backup1"
SERVER = "plesk1.rousseau.example"
MONITOR_PREFIX = "plesk-ord-mon-"
MONITOR = f"{MONITOR_PREFIX}1"
SOURCE = "https://autoinstall.plesk.com"
FAILED_TASK = "Assert nothing stands in the way of Plesk"


@pytest.fixture(scope="module")
def monitoring_host(cli: Any, root_user: None) -> Iterator[str]:
    """A lab host named as the monitoring server: the run reads its facts at its start
    (with the server's and the backup host's) and stops before anything else reaches it."""
    with owned_prefixes(cli, PREFIX, MONITOR_PREFIX):
        cli("lab", "up", "--hosts", "1", "--release", "bookworm", "--prefix", MONITOR_PREFIX,
            check=True)
        yield MONITOR


def on_host(cli: Any, host: str, command: str) -> str:
    return cli("lab", "ssh", host, "--", command, check=True).stdout


def summary_rows(stdout: str) -> dict[str, list[int]]:
    """The run's summary table: host -> [ok, changed, failed, unreachable, skipped]."""
    rows = {}
    for line in stdout.splitlines():
        match = re.fullmatch(r"(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", line.strip())
        if match:
            rows[match[1]] = [int(n) for n in match.groups()[1:]]
    return rows


def test_the_plesk_order_validates(cli: Any) -> None:
    proc = cli("order", "validate", str(ORDER))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"valid order {ORDER_ID} (dedicated_server, debian12, managed level plesk" in proc.stdout


def apply(cli: Any, monitoring_host: str) -> tuple[Any, str]:
    proc = cli("order", "apply", str(ORDER), "--lab", "--monitoring-server", monitoring_host)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAILED on ")]
    assert len(failures) == 1, proc.stdout
    return proc, failures[0]


def test_apply_provisions_the_server_then_stops_in_the_plesk_preflight(
    cli: Any, monitoring_host: str, state_dir: Path
) -> None:
    proc, failure = apply(cli, monitoring_host)
    assert failure.startswith(f"FAILED on {SERVER}, task '{FAILED_TASK}': Plesk cannot be "
                              f"installed on {SERVER}, nothing was changed:")
    # the source, named, and why it cannot be reached
    assert f"the installer source {SOURCE} cannot be reached from {SERVER}" in failure
    assert f"{SOURCE}/plesk-installer answered -1" in failure
    # every other problem of the inputs, at once: this lab inventory has no Plesk secrets
    for problem in (
        "plesk_admin_email '' is not an email address",
        "plesk_admin_password is not set or shorter than 12 characters",
        "plesk_eula_accepted is false",
        "the vault variable 'vault_plesk_license' is undefined",
    ):
        assert problem in failure, failure
    assert f"order {ORDER_ID}: the run failed" in proc.stdout
    # the base role provisioned the server before Plesk's turn ...
    assert re.search(rf"{re.escape(SERVER)}\s+changed\s+Record the order on the server",
                     proc.stdout), proc.stdout
    fact = on_host(cli, LAB_HOST, "cat /etc/ansible/facts.d/hostops.fact")
    assert '"managed_level": "plesk"' in fact and f'"order": "{ORDER_ID}"' in fact
    assert "passwordauthentication no" in on_host(cli, LAB_HOST, "sshd -T").lower()
    # ... and nothing of Plesk's is on it
    marks = on_host(cli, LAB_HOST,
                    "ls -d /usr/local/psa /opt/psa /root/plesk-installer 2>&1; true")
    assert marks.count("No such file or directory") == 3, marks
    # nothing ran after the failure: the backup host and the monitoring server were only
    # reached at the run's start, with the server (their facts gathered: read, no change);
    # no backups, no registration, no note
    rows = summary_rows(proc.stdout)
    # (localhost: provision.yml's check of the order, on the controller)
    assert set(rows) - {"localhost"} == {SERVER, BACKUP_HOST, MONITOR}, proc.stdout
    assert rows[SERVER][2] == 1
    for host in (BACKUP_HOST, MONITOR):
        assert rows[host] == [1, 0, 0, 0, 0], proc.stdout  # the facts, nothing else
        lines = [line.split() for line in proc.stdout.splitlines() if f" {host} " in line]
        assert [words[2:] for words in lines] == [["ok", "Gathering", "Facts"]], proc.stdout
    assert not (state_dir / "orders" / ORDER_ID / "delivery-note.json").exists()
    assert on_host(cli, MONITOR, "ls /etc/prometheus 2>&1; true").strip().endswith(
        "No such file or directory")


def test_a_second_apply_changes_nothing_and_stops_at_the_same_point(
    cli: Any, monitoring_host: str, state_dir: Path
) -> None:
    proc, failure = apply(cli, monitoring_host)
    assert f"task '{FAILED_TASK}'" in failure
    assert f"the installer source {SOURCE} cannot be reached" in failure
    rows = summary_rows(proc.stdout)
    assert rows[SERVER][1] == 0, proc.stdout  # the base role has nothing left to do
