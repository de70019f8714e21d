"""The backup program the role installs (the package roles/backup/files/hostops_backup,
imported from the repository: pyproject.toml's pytest pythonpath): its pure logic. Its
work against restic and the databases is checked on lab hosts by the backup-trixie and
backup-bookworm molecule scenarios."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hostops_backup.backup import check_paths
from hostops_backup.cli import main
from hostops_backup.common import Busy, ConfigError, Failure
from hostops_backup.config import load_config, parse_config
from hostops_backup.dumps import _stable
from hostops_backup.engines.base import file_name, quote_literal, scratch_name
from hostops_backup.engines.mariadb import quote_mariadb
from hostops_backup.engines.postgresql import quote_pg
from hostops_backup.lock import exclusive
from hostops_backup.metrics import State, recorded
from hostops_backup.process import run_until
from hostops_backup.restic import (
    DISK_FULL,
    Snapshot,
    incomplete_ids,
    parse_restic_time,
    snapshot_from_json,
)
from hostops_backup.restore import roles_to_create
from hostops_backup.snapshots import pick_snapshot
from hostops_backup.verify import compare_tables

ROOT = Path(__file__).resolve().parents[3]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _restore_the_process() -> Iterator[None]:
    """The script's main() sets the umask (077), TZ and a SIGTERM handler, as it should in
    its own process; here it runs inside a test worker, which must get them back, so that
    neither later tests nor the commands they start (a lab host's /etc/hosts written
    0600 ...) inherit them."""
    umask = os.umask(0o022)
    os.umask(umask)
    tz = os.environ.get("TZ")
    handler = signal.getsignal(signal.SIGTERM)
    yield
    os.umask(umask)
    if tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = tz
    time.tzset()
    signal.signal(signal.SIGTERM, handler)


def config(tmp_path: Path | None = None, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "host": "web01.example.fr",
        "repository": "sftp:backup@192.0.2.5:/web01.example.fr",
        "password_file": "/etc/hostops-backup/restic-password",
        "retention_days": 28,
        "timezone": "Europe/Paris",
        "paths": ["/var/www"],
    }
    if tmp_path is not None:
        data.update(
            state_file=str(tmp_path / "state" / "state.json"),
            metrics_file=str(tmp_path / "textfile" / "hostops_backup.prom"),
            lock_file=str(tmp_path / "lock"),
            dump_dir=str(tmp_path / "dumps"),
        )
    data.update(changes)
    return data


# --- retention and configuration ---------------------------------------------------------


@pytest.mark.parametrize("days", [1, 7, 28, 365, 3650])
def test_retention_accepted(days: int) -> None:
    assert parse_config(config(retention_days=days)).retention_days == days


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (0, "0 is below 1"),  # restic: "no policy", keeps everything, exit status 0
        (-1, "-1 is below 1"),
        (True, "expected a whole number"),  # a bool is an int in Python
        ("28", "expected a whole number"),
        (28.0, "expected a whole number"),
        (None, "expected a whole number"),
        (3651, "more than ten years"),
    ],
)
def test_retention_refused(days: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(retention_days=days))
    assert str(caught.value).startswith("retention_days: ")
    assert message in str(caught.value)
    assert caught.value.status == 2


def test_snapshots_marked_incomplete_and_their_markers_are_ignored() -> None:
    """The repository is append-only from the server: an incomplete snapshot (restic's
    exit status 3) is named by a marker snapshot instead of being forgotten."""
    bad = "a" * 64
    items = [
        {"id": bad, "tags": ["hostops", "files"]},
        {"id": "b" * 64, "tags": ["hostops-incomplete", f"incomplete:{bad}"]},
        {"id": "c" * 64, "tags": ["hostops", "files"]},
    ]
    assert incomplete_ids(items) == {bad, "b" * 64}
    assert incomplete_ids(items[2:]) == set()


def test_only_the_missing_postgresql_roles_are_created_from_the_globals() -> None:
    globals_sql = "\n".join(
        [
            "CREATE ROLE crm_owner;",
            "ALTER ROLE crm_owner WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';",
            "CREATE ROLE postgres;",
            "ALTER ROLE postgres WITH SUPERUSER INHERIT LOGIN;",
            'CREATE ROLE "Odd ""name""";',
            "GRANT crm_owner TO reporting GRANTED BY postgres;",
        ]
    )
    lines = roles_to_create(globals_sql, {"postgres"})
    assert lines == [
        "CREATE ROLE crm_owner;",
        "ALTER ROLE crm_owner WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';",
        'CREATE ROLE "Odd ""name""";',
    ]
    assert roles_to_create(globals_sql, {"postgres", "crm_owner", 'Odd "name"'}) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"paths": ["var/www"]}, "paths: 'var/www' is not an absolute path"),
        ({"paths": "/var/www"}, "paths: expected a list"),
        ({"timezone": "Europe/Pariss"}, "unknown time zone"),
        ({"engines_required": ["oracle"]}, "engines_required"),
        ({"host": ""}, "host: required text"),
        ({"surprise": 1}, "unknown configuration keys: surprise"),
        ({"check_subset_parts": 0}, "check_subset_parts: 0 is below 1"),
    ],
)
def test_bad_configuration(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(**changes))


def test_comment_keys_are_ignored() -> None:
    assert parse_config(config(_managed="Written by Ansible")).host == "web01.example.fr"


def test_missing_paths_fail_before_restic(tmp_path: Path) -> None:
    present = tmp_path / "www"
    present.mkdir()
    cfg = parse_config(config(paths=[str(present), str(tmp_path / "gone"), "/nonexistent/x"]))
    with pytest.raises(Failure) as caught:
        check_paths(cfg)
    assert f"missing: {tmp_path / 'gone'}, /nonexistent/x;" in str(caught.value)
    check_paths(parse_config(config(paths=[str(present)])))  # no error


# --- choosing the snapshot -----------------------------------------------------------------


def snap(short: str, when: str, kind: str = "dumps") -> Any:
    return Snapshot(
        id=short * 8,
        short_id=short,
        time=dt.datetime.fromisoformat(when),
        kind=kind,
        paths=("/var/backups/hostops/dumps",),
        host="web01.example.fr",
    )


SNAPSHOTS = [
    snap("aaaa0001", "2026-11-23T22:00:05+01:00"),
    snap("aaaa0002", "2026-11-24T22:00:04+01:00"),
    snap("aaaa0003", "2026-11-24T23:30:00+00:00"),  # 00:30 on the 25th in Paris
    snap("aaaa0004", "2026-11-25T22:00:06+01:00"),
    snap("bbbb0001", "2026-11-25T23:00:00+01:00", kind="files"),
]


@pytest.mark.parametrize(
    ("at", "kind", "expected"),
    [
        ("latest", "dumps", "aaaa0004"),
        ("latest", "files", "bbbb0001"),
        ("2026-11-24", "dumps", "aaaa0002"),  # the day is Paris's: 00:30 is the 25th
        ("2026-11-25", "dumps", "aaaa0004"),  # the last of the day
        ("2026-11-25T22:00:06+01:00", "dumps", "aaaa0004"),  # at: included
        ("2026-11-25T22:00:05+01:00", "dumps", "aaaa0003"),  # just before it
        ("2026-11-25T12:00:00", "dumps", "aaaa0003"),  # no offset: Paris time
        ("2026-11-25T11:00:00Z", "dumps", "aaaa0003"),
        ("aaaa0002", "dumps", "aaaa0002"),  # an id
        ("aaaa0002aaaa", "dumps", "aaaa0002"),  # an id prefix
    ],
)
def test_pick_snapshot(at: str, kind: str, expected: str) -> None:
    assert pick_snapshot(SNAPSHOTS, at, PARIS, kind).short_id == expected


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2026-11-20", "no dumps snapshot on 2026-11-20; there are snapshots on 2026-11-23"),
        ("2026-11-23T21:00:00+01:00", "no dumps snapshot at or before"),
        ("bbbb0001", "no dumps snapshot has this id"),
        ("aaaa000", "is not latest, a date"),
    ],
)
def test_pick_snapshot_refused(at: str, message: str) -> None:
    with pytest.raises(Failure, match=message):
        pick_snapshot(SNAPSHOTS, at, PARIS, "dumps")


def test_no_snapshot_of_the_kind() -> None:
    with pytest.raises(Failure, match="there is no files snapshot"):
        pick_snapshot(SNAPSHOTS[:2], "latest", PARIS, "files")


def test_restic_times() -> None:
    nanoseconds = parse_restic_time("2026-11-26T05:47:27.057195177Z")
    assert nanoseconds == dt.datetime(2026, 11, 26, 5, 47, 27, 57195, tzinfo=dt.UTC)
    offset = parse_restic_time("2026-11-25T22:00:00.5+01:00")
    assert offset.utcoffset() == dt.timedelta(hours=1)
    found = snapshot_from_json(
        {
            "id": "f" * 64,
            "short_id": "ffffffff",
            "time": "2026-11-25T22:00:00+01:00",
            "tags": ["hostops", "files"],
            "paths": ["/var/www"],
            "hostname": "web01",
        }
    )
    assert found is not None and found.kind == "files"
    # snapshots not made by hostops (or made by hand without a kind) are ignored
    assert snapshot_from_json({"id": "1", "time": "2026-11-25T22:00:00Z", "tags": ["x"]}) is None


# --- verify's comparison ----------------------------------------------------------------------


def test_compare_tables() -> None:
    expected = {
        "same": {"checksum": "1", "rows": 3, "stable": True},
        "changed": {"checksum": "1", "rows": 3, "stable": True},
        "fewer": {"checksum": "1", "rows": 3, "stable": True},
        "busy": {"checksum": "1", "rows": 3, "stable": False},
        "lost": {"checksum": "1", "rows": 3, "stable": True},
    }
    got = {
        "same": {"checksum": "1", "rows": 3},
        "changed": {"checksum": "2", "rows": 3},
        "fewer": {"checksum": "1", "rows": 2},
        "busy": {"checksum": "9", "rows": 4},
        "surprise": {"checksum": "5", "rows": 1},
    }
    statuses = {row["table"]: row["status"] for row in compare_tables(expected, got)}
    assert statuses == {
        "same": "ok",
        "changed": "mismatch",
        "fewer": "mismatch",
        "busy": "changed-during-dump",  # written while dumped: no reference value
        "lost": "missing",
        "surprise": "extra",
    }


def test_table_stable_only_when_both_checksums_agree() -> None:
    before = {"a": {"checksum": "1", "rows": 2}, "b": {"checksum": "1", "rows": 2}}
    after = {"a": {"checksum": "1", "rows": 2}, "b": {"checksum": "3", "rows": 2}}
    assert _stable(before, after) == {
        "a": {"checksum": "1", "rows": 2, "stable": True},
        "b": {"checksum": "3", "rows": 2, "stable": False},
    }


# --- names ------------------------------------------------------------------------------------


def test_scratch_names_fit_and_never_collide_with_live_ones() -> None:
    assert scratch_name("shop") == "hostops_verify_shop"
    assert scratch_name("my-db$x") == "hostops_verify_my_db_x"
    long_a, long_b = scratch_name("a" * 64), scratch_name("a" * 63 + "b")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b


def test_database_names_as_file_names() -> None:
    assert file_name("shop") == "shop"
    assert file_name("../etc/x") == "..%2Fetc%2Fx"
    assert quote_mariadb("we`ird") == "`we``ird`"
    assert quote_pg('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"


# --- lock, state and metrics ------------------------------------------------------------------


def test_one_run_at_a_time(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path))
    with exclusive(cfg, 0):
        with pytest.raises(Busy) as caught, exclusive(cfg, 0):
            pass
        assert caught.value.status == 75
    with exclusive(cfg, 0):  # released
        pass


# restic's retry line when the REST server's disk is full (restic 0.18; 0.14 says
# "server response unexpected: 507 Insufficient Storage (507)")
RETRY_507 = (
    "Save(<data/507c0c5ec9>) returned error, retrying after 1.3s: "
    "unexpected HTTP response (507): 507 Insufficient Storage"
)


def test_a_full_backup_host_stops_restic_at_its_first_507() -> None:
    # a stand-in for restic that would go on retrying for minutes; SIGTERM ends it
    command = [
        sys.executable,
        "-c",
        "import sys, time; print('status', flush=True); "
        f"print({RETRY_507!r}, file=sys.stderr, flush=True); time.sleep(300)",
    ]
    started = time.monotonic()
    proc, stopped = run_until(command, env=dict(os.environ), stop_on=DISK_FULL)
    assert stopped
    assert time.monotonic() - started < 30
    assert proc.returncode == -signal.SIGTERM
    assert b"507 Insufficient Storage" in proc.stderr
    assert b"status" in proc.stdout


def test_other_errors_do_not_stop_restic() -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; print('Save(<lock/1>) returned error, retrying after 1s: 500 Internal "
        "Server Error', file=sys.stderr); print('done'); sys.exit(3)",
    ]
    proc, stopped = run_until(command, env=dict(os.environ), stop_on=DISK_FULL)
    assert not stopped
    assert proc.returncode == 3
    assert proc.stdout == b"done\n"


def prom(cfg: Any) -> dict[tuple[str, str], float]:
    values = {}
    for line in cfg.metrics_file.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            metric, _, labels = name.partition("{")
            kind = labels.split('"')[1] if labels else ""
            values[(metric, kind)] = float(value)
    return values


def test_a_successful_run_publishes_its_result(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path))
    with recorded(cfg, "dumps") as result:
        assert prom(cfg)[("hostops_backup_running", "dumps")] == 1
        result.update(size=1234, added=56, snapshots=3)
    values = prom(cfg)
    assert values[("hostops_backup_running", "dumps")] == 0
    assert values[("hostops_backup_last_run_failed", "dumps")] == 0
    assert values[("hostops_backup_last_size_bytes", "dumps")] == 1234
    assert values[("hostops_backup_last_added_bytes", "dumps")] == 56
    assert values[("hostops_backup_snapshots", "dumps")] == 3
    assert values[("hostops_backup_retention_days", "")] == 28
    assert values[("hostops_backup_last_success_timestamp_seconds", "dumps")] > 1.7e9
    assert sorted(p.name for p in cfg.metrics_file.parent.iterdir()) == ["hostops_backup.prom"]
    assert cfg.metrics_file.stat().st_mode & 0o777 == 0o644


def test_a_failed_run_keeps_the_last_success(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path))
    with recorded(cfg, "files"):
        pass
    success = prom(cfg)[("hostops_backup_last_success_timestamp_seconds", "files")]
    with pytest.raises(Failure), recorded(cfg, "files"):
        raise Failure("backup path(s) missing: /srv/data")
    values = prom(cfg)
    assert values[("hostops_backup_last_run_failed", "files")] == 1
    assert values[("hostops_backup_running", "files")] == 0
    assert values[("hostops_backup_last_success_timestamp_seconds", "files")] == success
    state = json.loads(cfg.state_file.read_text())
    assert state["files"]["message"] == "backup path(s) missing: /srv/data"


def test_a_killed_run_is_recorded_by_the_unit(tmp_path: Path, monkeypatch: Any) -> None:
    """SIGKILL leaves running=1 behind; the unit's ExecStopPost (finish) records it."""
    cfg_path = tmp_path / "backup.json"
    cfg_path.write_text(json.dumps(config(tmp_path)))
    cfg = load_config(cfg_path)
    State(cfg).update("files", running=1, last_start=1.0)
    monkeypatch.setenv("SERVICE_RESULT", "signal")
    monkeypatch.setenv("EXIT_CODE", "killed")
    monkeypatch.setenv("EXIT_STATUS", "KILL")
    assert main(["--config", str(cfg_path), "finish", "--kind", "files"]) == 0
    values = prom(cfg)
    assert values[("hostops_backup_last_run_failed", "files")] == 1
    assert values[("hostops_backup_running", "files")] == 0
    assert "result 'signal'" in json.loads(cfg.state_file.read_text())["files"]["message"]


def test_finish_after_a_success_changes_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    cfg_path = tmp_path / "backup.json"
    cfg_path.write_text(json.dumps(config(tmp_path)))
    cfg = load_config(cfg_path)
    with recorded(cfg, "dumps"):
        pass
    before = cfg.state_file.read_text()
    monkeypatch.setenv("SERVICE_RESULT", "success")
    assert main(["--config", str(cfg_path), "finish", "--kind", "dumps"]) == 0
    assert cfg.state_file.read_text() == before


def test_bad_configuration_exits_2(tmp_path: Path, capsys: Any) -> None:
    cfg_path = tmp_path / "backup.json"
    cfg_path.write_text(json.dumps(config(tmp_path, retention_days=0)))
    assert main(["--config", str(cfg_path), "--json", "snapshots"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["error"].startswith("retention_days: 0 is below 1")
