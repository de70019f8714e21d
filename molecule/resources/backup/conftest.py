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
