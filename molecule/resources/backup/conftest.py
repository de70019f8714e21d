"""Shared by the backup scenarios' checks (tests/ on every release, tests_trixie/ on 13)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backup_helpers import BACKUP_HOST, INVENTORY, MANAGED


@pytest.fixture(scope="session")
def managed():  # type: ignore[no-untyped-def]
    """The managed server (MariaDB, PostgreSQL, files), for session-wide fixtures."""
    import testinfra  # noqa: PLC0415

    return testinfra.get_host(f"ansible://{MANAGED}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def host(managed):  # type: ignore[no-untyped-def]
    """Every check runs on the managed server (molecule's --hosts names both hosts; this
    fixture replaces testinfra's, which would run each check on each of them)."""
    return managed


@pytest.fixture(scope="session")
def backup_host():  # type: ignore[no-untyped-def]
    """The backup host (the SFTP repositories)."""
    import testinfra  # noqa: PLC0415

    return testinfra.get_host(f"ansible://{BACKUP_HOST}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="session")
def baseline(managed):  # type: ignore[no-untyped-def]
    """At least one good snapshot of each kind, whatever ran before."""
    from backup_helpers import snapshots  # noqa: PLC0415

    kinds = {s["kind"] for s in snapshots(managed)}
    for kind in ("dumps", "files"):
        if kind not in kinds:
            result = managed.run(f"systemctl start hostops-backup-{kind}.service")
            assert result.rc == 0, result.stderr
    return snapshots(managed)


BACKUP_KINDS = ("dumps", "files", "check")
BUSY_STATES = {"active", "activating", "deactivating", "reloading", "refreshing"}


@pytest.fixture(scope="module")
def backup_timers_stopped(managed):  # type: ignore[no-untyped-def]
    """The backup timers stopped for the rest of the module, their runs finished.

    The timers fire at 22:00 (dumps) and 23:00 (files) Paris time and on Sundays at 05:00
    (check): a run started by one in the middle of a check adds a snapshot the check does
    not expect, holds the script's lock (exit status 75) or is joined by the check's own
    ``systemctl start``. The checks of the timers' schedule run before this fixture, on
    the real timers. At the end of the module the timers still enabled start again."""
    from backup_helpers import wait_for  # noqa: PLC0415

    timers = [f"hostops-backup-{kind}.timer" for kind in BACKUP_KINDS]
    services = " ".join(f"hostops-backup-{kind}.service" for kind in BACKUP_KINDS)
    running = [t for t in timers if managed.run(f"systemctl is-active --quiet {t}").rc == 0]
    if running:
        stopped = managed.run(f"systemctl stop {' '.join(running)}")
        assert stopped.rc == 0, stopped.stderr

    def idle() -> bool:
        states = managed.run(f"systemctl is-active {services}").stdout.split()
        return not BUSY_STATES & set(states)

    # a run the timers started is left to finish (a files backup or a check: minutes)
    assert wait_for(idle, timeout=900, step=2), "a backup run started by a timer never ended"
    yield
    for timer in running:
        if managed.run(f"systemctl is-enabled --quiet {timer}").rc == 0:
            managed.run(f"systemctl start {timer}")
