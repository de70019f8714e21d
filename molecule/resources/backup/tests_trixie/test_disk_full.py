"""The backup host's disk full (Debian 13): server B's files run fails visibly and at once
(its metrics and journal; the backup host's disk metrics are what BackupHostDiskFilling
alerts on), B's earlier snapshots stay intact (restic on the backup host), and the next run
after space is freed succeeds.

The full disk is a small tmpfs mounted over the backup host's repositories' root
(/srv/restic-rest, inside its lab container) with a copy of B's repository, first with room
left (the control: the disk published as not filling), then filled to the last byte by a
file of its own: bounded, the machine's real disk is never filled, and what that disk holds
does not change the test. The
real directory stays reachable through a private bind mount; what B adds once space is
freed is copied back there before the tmpfs goes away.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest
from backup_helpers import (
    SERVER_SCRIPT,
    config,
    journal_since,
    metrics,
    now,
    repo_ids,
    server_metrics,
)

pytestmark = pytest.mark.usefixtures("backup_timers_stopped")

ROOT_DIR = "/srv/restic-rest"
REAL = "/run/hostops-test-repositories"  # the real directory, while the tmpfs hides it
FILLER = f"{ROOT_DIR}/.hostops-test-filler"
NEW_DATA = "/srv/data/hostops-test-new.bin"


def sh(machine: Any, command: str) -> str:
    result = machine.run(command)
    assert result.rc == 0, (command, result.stdout, result.stderr)
    return result.stdout


def disk(backup_host: Any) -> tuple[float, float]:
    """The backup host's published free and total bytes of the repositories' root, after a
    metrics run."""
    backup_host.run("systemctl start hostops-backup-server-metrics.service")
    values = server_metrics(backup_host)
    return (
        values[("hostops_backup_server_disk_free_bytes", "", "")],
        values[("hostops_backup_server_disk_size_bytes", "", "")],
    )


@contextlib.contextmanager
def tmpfs_root(backup_host: Any, name: str) -> Iterator[None]:
    """The repositories' root on a tmpfs holding a copy of the repository *name*, with as
    much room again (at least 32 MiB) left: bounded, and the same disk whatever the
    machine's own disk holds."""
    sh(backup_host, f"mkdir -p {REAL} && mount --bind {ROOT_DIR} {REAL}")
    sh(backup_host, f"mount --make-private {REAL}")  # the tmpfs must not show there too
    try:
        used = int(sh(backup_host, f"du -sk {REAL}/{name} | cut -f1").split()[0])
        room = max(used, 32768)
        sh(backup_host, f"mount -t tmpfs -o size={used + room}k tmpfs {ROOT_DIR}")
        sh(
            backup_host,
            f"chown --reference={REAL} {ROOT_DIR} && chmod --reference={REAL} {ROOT_DIR} "
            f"&& cp -a {REAL}/{name} {ROOT_DIR}/",
        )
        # the REST server's own mount namespace (ProtectSystem) sees the tmpfs once restarted
        sh(backup_host, "systemctl restart restic-rest-server.service")
        yield
    finally:
        # what was added meanwhile (the new snapshot's files) goes to the real directory
        backup_host.run(f"rm -rf {FILLER} {ROOT_DIR}/{name}/locks/*")
        backup_host.run(f"cp -a -n {ROOT_DIR}/{name}/. {REAL}/{name}/")
        backup_host.run(f"umount {ROOT_DIR}")
        backup_host.run(f"umount {REAL} && rmdir {REAL}")
        backup_host.run("systemctl restart restic-rest-server.service")


def fill(backup_host: Any) -> None:
    """The filler takes every byte left (dd ends with 'No space left on device')."""
    filled = backup_host.run(f"dd if=/dev/zero of={FILLER} bs=64k status=none")
    assert "No space left on device" in filled.stderr, filled.stderr
    assert sh(backup_host, f"df --output=avail -k {ROOT_DIR} | tail -1").strip() == "0"


def test_a_full_backup_host_fails_the_run_visibly_and_the_next_run_succeeds(
    other: Any, backup_host: Any
) -> None:
    name = config(other)["host"]
    # positive control: B's files run succeeds while there is room (and B has snapshots)
    assert other.run("systemctl start hostops-backup-files.service").rc == 0
    before = repo_ids(backup_host, name)
    assert before
    success = metrics(other)[("hostops_backup_last_success_timestamp_seconds", "files")]
    sh(other, f"head -c 8M /dev/urandom > {NEW_DATA}")  # new data to upload
    try:
        with tmpfs_root(backup_host, name):
            # positive control: with room left the published disk is not filling
            # (BackupHostDiskFilling's expression quiet), on the same tmpfs filled below
            free, size = disk(backup_host)
            assert free / size > 0.15, (free, size)
            fill(backup_host)
            # full: the run fails, at once (restic alone retries for 15 minutes)
            started = now(other)
            clock = time.monotonic()
            failed = other.run("systemctl start hostops-backup-files.service")
            elapsed = time.monotonic() - clock
            assert failed.rc != 0
            assert elapsed < 120, elapsed
            values = metrics(other)
            assert values[("hostops_backup_last_run_failed", "files")] == 1  # BackupFailed
            assert values[("hostops_backup_last_success_timestamp_seconds", "files")] == success
            journal = journal_since(
                other, "hostops-backup-files.service", started, "the backup host's disk is full"
            )
            assert "the backup host's disk is full" in journal, journal
            assert "507 Insufficient Storage" in journal, journal
            # the backup host publishes its disk as full: BackupHostDiskFilling's expression
            free, size = disk(backup_host)
            assert free / size < 0.15, (free, size)
            # the earlier snapshots are all there, read with restic on the backup host
            assert repo_ids(backup_host, name) == before

            # space freed: the next run succeeds
            sh(backup_host, f"rm {FILLER}")
            assert other.run("systemctl start hostops-backup-files.service").rc == 0
            assert metrics(other)[("hostops_backup_last_run_failed", "files")] == 0
            after = repo_ids(backup_host, name)
            assert set(before) < set(after)
            checked = backup_host.run(
                f"{SERVER_SCRIPT} restic {shlex.quote(name)} check --read-data"
            )
            assert checked.rc == 0, checked.stdout + checked.stderr
    finally:
        other.run(f"rm -f {NEW_DATA}")
        backup_host.run("systemctl start hostops-backup-server-metrics.service")
    # back on the real directory: the snapshot made on the tmpfs came along, sound
    assert repo_ids(backup_host, name) == after
    checked = backup_host.run(f"{SERVER_SCRIPT} restic {shlex.quote(name)} check --read-data")
    assert checked.rc == 0, checked.stdout + checked.stderr
