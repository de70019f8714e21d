"""Shared by the backup scenarios' checks (tests/ on every release, tests_trixie/ on 13)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backup_helpers import BACKUP_HOST, INVENTORY, MANAGED, OTHER, REMOVED


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "removes_server_a: destroys server A's lab host; run after every other check"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Checks that destroy server A run last, whatever the order of their files."""
    items.sort(key=lambda item: item.get_closest_marker("removes_server_a") is not None)


@pytest.fixture(scope="session")
def managed() -> Any:
    """The managed server (MariaDB, PostgreSQL, files), for session-wide fixtures."""
    import testinfra  # noqa: PLC0415

    return testinfra.get_host(f"ansible://{MANAGED}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def host(managed: Any) -> Any:
    """Every check runs on the managed server (molecule's --hosts names both hosts; this
    fixture replaces testinfra's, which would run each check on each of them)."""
    return managed


@pytest.fixture(scope="session")
def other() -> Any:
    """Server B (Debian 13 scenario): another customer's server, and where A is restored."""
    import testinfra  # noqa: PLC0415

    return testinfra.get_host(f"ansible://{OTHER}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="session")
def backup_host() -> Any:
    """The backup host (restic's REST server and the repositories)."""
    import testinfra  # noqa: PLC0415

    return testinfra.get_host(f"ansible://{BACKUP_HOST}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="session")
def baseline(managed: Any) -> list[dict[str, Any]]:
    """At least one good snapshot of each kind, whatever ran before."""
    from backup_helpers import snapshots  # noqa: PLC0415

    kinds = {s["kind"] for s in snapshots(managed)}
    for kind in ("dumps", "files"):
        if kind not in kinds:
            result = managed.run(f"systemctl start hostops-backup-{kind}.service")
            assert result.rc == 0, result.stderr
    return snapshots(managed)


BACKUP_KINDS = ("dumps", "files")
BUSY_STATES = {"active", "activating", "deactivating", "reloading", "refreshing"}


SERVER_KINDS = ("prune", "check", "metrics")


@pytest.fixture(scope="module")
def backup_timers_stopped(managed: Any, backup_host: Any) -> Iterator[None]:
    """The backup timers stopped for the rest of the module, their runs finished: the
    managed server's (dumps at 22:00, files at 23:00 Paris time) and the backup host's
    (retention at 06:00, check on Sundays at 05:00, metrics every 15 minutes).

    A run started by one in the middle of a check adds a snapshot the check does not
    expect, removes snapshots, or holds a script's lock. The checks of the timers' schedule
    run before this fixture, on the real timers. At the end of the module the timers
    still enabled start again."""
    from backup_helpers import wait_for  # noqa: PLC0415

    sides = (
        (managed, MANAGED, "hostops-backup", BACKUP_KINDS),
        (backup_host, BACKUP_HOST, "hostops-backup-server", SERVER_KINDS),
    )
    restart = []
    for machine, name, prefix, kinds in sides:
        timers = [f"{prefix}-{kind}.timer" for kind in kinds]
        running = [t for t in timers if machine.run(f"systemctl is-active --quiet {t}").rc == 0]
        if running:
            stopped = machine.run(f"systemctl stop {' '.join(running)}")
            assert stopped.rc == 0, stopped.stderr
        restart.append((machine, name, running))
        services = " ".join(f"{prefix}-{kind}.service" for kind in kinds)

        def idle(machine: Any = machine, services: str = services) -> bool:
            states = machine.run(f"systemctl is-active {services}").stdout.split()
            return not BUSY_STATES & set(states)

        # a run the timers started is left to finish (a files backup or a check: minutes)
        assert wait_for(idle, timeout=900, step=2), "a backup run started by a timer never ended"
    yield
    for machine, name, running in restart:
        if name in REMOVED:  # destroyed by the check itself
            continue
        for timer in running:
            if machine.run(f"systemctl is-enabled --quiet {timer}").rc == 0:
                machine.run(f"systemctl start {timer}")
