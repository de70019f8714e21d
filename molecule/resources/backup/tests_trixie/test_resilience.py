"""Failures of the run itself (Debian 13): the backup host out of reach, a run killed with
SIGKILL in the middle, a hung dump, two runs at once. Each must fail visibly (non-zero,
failure published), leave the earlier backups intact and not prevent the next run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from backup_helpers import (
    SCRIPT,
    config,
    journal_since,
    mariadb,
    metrics,
    now,
    script,
    snapshot_ids,
    wait_for,
)

# no run started by a timer in the middle of these checks (see conftest.py)
pytestmark = pytest.mark.usefixtures("backup_timers_stopped")

# the restic process of the files run's upload (the run starts others before and after)
UPLOAD = "^restic .* backup --json"


def test_an_unreachable_backup_host_fails_the_run_visibly(host: Any, baseline: Any) -> None:
    address = config(host)["repository"].split("//", 1)[1].split(":", 1)[0]
    before = {kind: snapshot_ids(host, kind) for kind in ("dumps", "files")}
    success = metrics(host)[("hostops_backup_last_success_timestamp_seconds", "dumps")]
    started = now(host)
    host.run(f"ip route add unreachable {address}/32")
    try:
        result = host.run("systemctl start hostops-backup-dumps.service")
        values = metrics(host)
    finally:
        host.run(f"ip route del unreachable {address}/32")
    assert result.rc != 0
    journal = journal_since(host, "hostops-backup-dumps.service", started, "No route to host")
    assert "No route to host" in journal, journal
    assert values[("hostops_backup_last_run_failed", "dumps")] == 1
    assert values[("hostops_backup_last_success_timestamp_seconds", "dumps")] == success
    # reachable again: everything that was there still is
    assert {kind: snapshot_ids(host, kind) for kind in ("dumps", "files")} == before


def test_kill_9_mid_run_leaves_a_sound_repository_and_the_next_run_succeeds(
    host: Any, backup_host: Any, baseline: Any
) -> None:
    name = config(host)["host"]
    before = snapshot_ids(host, "files")
    # enough data for the upload to take a while
    host.run("head -c 300M /dev/urandom > /srv/data/big.bin")
    try:
        host.run("systemctl start --no-block hostops-backup-files.service")
        # the upload is frozen (SIGSTOP) the moment it shows, so that it cannot end before
        # the kill however long the checks in between take
        frozen = host.run(
            f"for i in $(seq 600); do pkill -STOP -f '{UPLOAD}' && exit 0; sleep 0.1; done; exit 1"
        )
        assert frozen.rc == 0, "the run never reached restic's upload"
        locks = f"find /srv/restic-rest/{name}/locks -type f | wc -l"

        def holds_its_lock() -> bool:
            if backup_host.check_output(locks) != "0":
                return True
            # frozen before it wrote its lock to the repository: let it go on a moment
            host.run(f"pkill -CONT -f '{UPLOAD}'; sleep 0.2; pkill -STOP -f '{UPLOAD}'")
            return False

        assert wait_for(holds_its_lock, timeout=60), "the upload never locked the repository"
        stopped = host.run(f"ps -o stat= -p \"$(pgrep -d, -f '{UPLOAD}')\"")
        assert stopped.stdout.strip().startswith("T"), stopped.stdout  # still there, frozen
        # a second run meanwhile is locked out at once, with its own exit status
        rc, report, _ = script(host, "run", "--kind", "files")
        assert rc == 75
        assert "another hostops-backup run holds" in report["error"]

        # SIGKILL ends a stopped process too
        host.run("systemctl kill --signal=SIGKILL hostops-backup-files.service")
        assert wait_for(
            lambda: (
                host.run("systemctl is-active hostops-backup-files.service").stdout.strip()
                in ("failed", "inactive")
            ),
            timeout=30,
        )
        # the killed run left its lock in the repository: a stale lock, as after a crash
        assert backup_host.check_output(locks) != "0"
        values = metrics(host)
        assert values[("hostops_backup_last_run_failed", "files")] == 1  # by ExecStopPost
        assert values[("hostops_backup_running", "files")] == 0

        rc, report, err = script(host, "check", "--subset", "100%")
        assert rc == 0, err + json.dumps(report)  # stale lock removed, repository sound
        after = snapshot_ids(host, "files")
        assert set(before) <= set(after)
    finally:
        host.run(f"pkill -CONT -f '{UPLOAD}'")  # never leave a frozen upload behind
        host.run("rm -f /srv/data/big.bin")
    result = host.run("systemctl start hostops-backup-files.service")
    assert result.rc == 0, result.stderr
    values = metrics(host)
    assert values[("hostops_backup_last_run_failed", "files")] == 0


def test_a_hung_dump_is_stopped_by_the_start_timeout(host: Any, baseline: Any) -> None:
    """A oneshot unit has no start timeout by default, and a timer never starts a second
    run while one is active: one hung dump would silently cost every following night."""
    dropin = "/run/systemd/system/hostops-backup-dumps.service.d"
    started = now(host)
    host.run(
        f"mkdir -p {dropin} && printf '[Service]\\nTimeoutStartSec=5s\\n' > {dropin}/test.conf"
        " && systemctl daemon-reload"
    )
    # a session holding a write lock on a table: the dump waits for it forever
    host.run(
        "systemd-run --unit=hostops-test-locker --collect "
        "mariadb -e 'LOCK TABLES wiki.pages WRITE; SELECT SLEEP(120)'"
    )
    try:
        # systemd-run returns before the session has run LOCK TABLES: its SLEEP shows once
        # the lock is held
        sleeping = (
            "SELECT COUNT(*) FROM information_schema.processlist "
            "WHERE info LIKE 'SELECT SLEEP(120)%'"
        )
        assert wait_for(lambda: mariadb(host, sleeping) == [["1"]], timeout=30, step=0.5)
        # timed on the host, around the start alone
        timed = host.run(
            "s=$(date +%s%N); systemctl start hostops-backup-dumps.service; rc=$?; "
            'echo "$rc $(( ($(date +%s%N) - s) / 1000000 ))"'
        )
        rc, elapsed_ms = (int(v) for v in timed.stdout.split())
        state = host.check_output("systemctl show hostops-backup-dumps.service -p Result --value")
        values = metrics(host)
    finally:
        # the server keeps a dead client's lock until its query ends: kill it there
        host.run(
            'mariadb -N -e "SELECT id FROM information_schema.processlist '
            "WHERE info LIKE 'SELECT SLEEP(120)%'\" | xargs -r -I{} mariadb -e 'KILL {}'"
        )
        host.run("systemctl stop hostops-test-locker.service")
        host.run(f"rm -rf {dropin} && systemctl daemon-reload")
    assert rc != 0, timed.stdout + timed.stderr
    assert elapsed_ms < 60_000  # stopped after its 5 s (and the stop's own timeout)
    assert state == "timeout"
    assert values[("hostops_backup_last_run_failed", "dumps")] == 1
    assert values[("hostops_backup_running", "dumps")] == 0
    journal = journal_since(host, "hostops-backup-dumps.service", started, "terminated")
    assert "terminated" in journal, journal
    # not stuck: the next run goes through
    assert host.run("systemctl start hostops-backup-dumps.service").rc == 0
    assert metrics(host)[("hostops_backup_last_run_failed", "dumps")] == 0
    assert host.run(f"{SCRIPT} restic list locks --no-lock").stdout.strip() == ""
