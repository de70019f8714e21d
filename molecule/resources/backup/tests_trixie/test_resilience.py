"""Failures of the run itself (Debian 13): the backup host out of reach, a run killed with
SIGKILL in the middle, a hung dump, two runs at once. Each must fail visibly (non-zero,
failure published), leave the earlier backups intact and not prevent the next run."""

from __future__ import annotations

import json

from backup_helpers import (
    SCRIPT,
    config,
    journal_since,
    metrics,
    now,
    script,
    snapshot_ids,
    wait_for,
)


def test_an_unreachable_backup_host_fails_the_run_visibly(host, baseline):
    address = config(host)["repository"].split("@", 1)[1].split(":", 1)[0]
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
    journal = journal_since(host, "hostops-backup-dumps.service", started)
    assert "No route to host" in journal, journal
    assert values[("hostops_backup_last_run_failed", "dumps")] == 1
    assert values[("hostops_backup_last_success_timestamp_seconds", "dumps")] == success
    # reachable again: everything that was there still is
    assert {kind: snapshot_ids(host, kind) for kind in ("dumps", "files")} == before


def test_kill_9_mid_run_leaves_a_sound_repository_and_the_next_run_succeeds(
    host, backup_host, baseline
):
    name = config(host)["host"]
    before = snapshot_ids(host, "files")
    # enough data for the upload to take a while
    host.run("head -c 300M /dev/urandom > /srv/data/big.bin")
    try:
        host.run("systemctl start --no-block hostops-backup-files.service")
        locks = f"find /srv/restic/{name}/locks -type f | wc -l"
        uploading = wait_for(
            lambda: host.run("pgrep -x restic").rc == 0 and backup_host.check_output(locks) != "0",
            timeout=60,
        )
        assert uploading, "the run never reached restic"
        # a second run meanwhile is locked out at once, with its own exit status
        rc, report, _ = script(host, "run", "--kind", "files")
        assert rc == 75
        assert "another hostops-backup run holds" in report["error"]

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
        host.run("rm -f /srv/data/big.bin")
    result = host.run("systemctl start hostops-backup-files.service")
    assert result.rc == 0, result.stderr
    values = metrics(host)
    assert values[("hostops_backup_last_run_failed", "files")] == 0


def test_a_hung_dump_is_stopped_by_the_start_timeout(host, baseline):
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
        result = host.run("systemctl start hostops-backup-dumps.service")
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
    assert result.rc != 0
    assert now(host) - started < 60
    assert state == "timeout"
    assert values[("hostops_backup_last_run_failed", "dumps")] == 1
    assert values[("hostops_backup_running", "dumps")] == 0
    journal = journal_since(host, "hostops-backup-dumps.service", started)
    assert "terminated" in journal
    # not stuck: the next run goes through
    assert host.run("systemctl start hostops-backup-dumps.service").rc == 0
    assert metrics(host)[("hostops_backup_last_run_failed", "dumps")] == 0
    assert host.run(f"{SCRIPT} restic list locks --no-lock").stdout.strip() == ""
