"""Majors by agreement and scheduled runs without a host: the record, the units (issue 19)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from hostops.core.errors import UsageError
from hostops.patching import agreements as patch_agreements
from hostops.patching import schedule as patch_schedule

HOST = "web01.example.fr"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(path))
    return path


def report(
    approved: list[dict[str, Any]], held: list[dict[str, Any]], error: str | None = None
) -> dict[str, Any]:
    return {"error": error, "result": {"approved": approved, "held": held, "applied": []}}


def test_an_approval_is_passed_to_runs_until_applied_then_expires(
    state: Path, tmp_path: Path
) -> None:
    patch_agreements.record(
        decision="approved",
        host=HOST,
        package="postgresql-15",
        version=None,
        reference="ticket 4711",
        by="alice",
    )
    data = patch_agreements.load()
    assert patch_agreements.approvals_for([HOST, "other"], data) == {HOST: {"postgresql-15": ""}}
    # a plan (check mode) does not use it up
    outcome = {"name": "postgresql-15", "from": "15.18", "to": "15.20", "outcome": "would apply"}
    patch_agreements.after_run({HOST: report([outcome], [])}, tmp_path, check=True)
    assert patch_agreements.approvals_for([HOST], patch_agreements.load()) != {}
    # a run that could not apply it keeps it, with why
    held = dict(outcome, outcome="held", reason="libpq5 would get a major update")
    patch_agreements.after_run({HOST: report([held], [])}, tmp_path, check=False)
    entry = patch_agreements.load()["agreements"][f"{HOST}/postgresql-15"]
    assert entry["status"] == "pending" and "libpq5" in entry["last_attempt"]["reason"]
    # applied: it expires
    applied = dict(outcome, outcome="applied")
    patch_agreements.after_run({HOST: report([applied], [])}, tmp_path, check=False)
    data = patch_agreements.load()
    assert patch_agreements.approvals_for([HOST], data) == {}
    entry = data["agreements"][f"{HOST}/postgresql-15"]
    assert (entry["status"], entry["applied_version"], entry["by"]) == ("applied", "15.20", "alice")
    assert oct((state / "patch-agreements.json").stat().st_mode & 0o777) == "0o600"
    assert not list(state.glob(".patch-agreements.*"))  # no temporary file left


def test_a_refusal_replaces_the_approval_and_keeps_it_in_history(state: Path) -> None:
    for decision in ("approved", "refused"):
        patch_agreements.record(
            decision=decision,
            host=HOST,
            package="php8.2-fpm",
            version="8.4.1-1" if decision == "approved" else None,
            reference=f"ticket {decision}",
            by="bob",
        )
    data = patch_agreements.load()
    entry = data["agreements"][f"{HOST}/php8.2-fpm"]
    assert entry["decision"] == "refused"
    assert [old["decision"] for old in entry["history"]] == ["approved"]
    assert patch_agreements.approvals_for([HOST], data) == {}


def test_plans_and_reports_list_held_majors_decisions_and_ages(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    monkeypatch.setattr(patch_agreements, "now", lambda: start)
    major = {"name": "postgresql-15", "from": "15.18", "to": "15.20", "reason": "major"}
    patch_agreements.after_run({HOST: report([], [major])}, tmp_path, check=True)
    patch_agreements.record(
        decision="refused",
        host=HOST,
        package="postgresql-15",
        version=None,
        reference="mail of 4 Jan",
        by="carol",
    )
    monkeypatch.setattr(patch_agreements, "now", lambda: start + timedelta(days=3, hours=2))
    data = patch_agreements.after_run({HOST: report([], [major])}, tmp_path, check=False)
    rows = patch_agreements.overview([HOST], data)
    assert [(row["kind"], row["age"]) for row in rows] == [
        ("held major", "3 d"),
        ("refused", "3 d"),
    ]
    text = "\n".join(patch_agreements.overview_lines(rows))
    assert f"{HOST}  postgresql-15 15.18 -> 15.20  held 3 d; client refused" in text
    assert "REFUSED: the client carries the consequences; ref 'mail of 4 Jan'" in text
    assert "recorded by carol 3 d ago" in text
    # once no longer pending, the held major leaves the list; a failed host keeps it
    data = patch_agreements.after_run({HOST: report([], [], error="x")}, tmp_path, check=False)
    assert f"{HOST}/postgresql-15" in data["held"]
    data = patch_agreements.after_run({HOST: report([], [])}, tmp_path, check=False)
    assert data["held"] == {}
    assert patch_agreements.overview(["another"], data) == []


@pytest.mark.parametrize(
    ("check", "value", "problem"),
    [
        (patch_agreements.package_problems, "nginx", None),
        (patch_agreements.package_problems, "Nginx", "--package: 'Nginx'"),
        (patch_agreements.package_problems, "a", "--package: 'a'"),
        (patch_agreements.version_problems, "1:15.20-0+deb12u1", None),
        (patch_agreements.version_problems, "15 20", "--version: '15 20'"),
        (patch_agreements.reference_problems, "ticket 1", None),
        (patch_agreements.reference_problems, "", "--reference: ''"),
        (patch_agreements.reference_problems, "a\nb", "control characters"),
        (patch_agreements.reference_problems, "x" * 201, "longer than 200"),
    ],
)
def test_checks(check: Any, value: str, problem: str | None) -> None:
    problems = check(value)
    if problem is None:
        assert problems == []
    else:
        [found] = problems
        assert problem in found


# -- the schedule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "days", "problem"),
    [
        ("09:00", "Mon-Fri", None),
        ("11:59", "Mon-Fri", None),
        ("15:59", "Mon-Thu", None),
        ("12:00", "Mon-Fri", "closed from 12:00 on Friday afternoons"),
        ("08:59", "Mon", "outside the maintenance window (09:00 to 16:00"),
        ("16:00", "Tue", "outside the maintenance window"),
        ("10:00", "Fri-Sat", "closed at weekends"),
        ("10:00", "Sun", "closed at weekends"),
    ],
)
def test_the_time_must_be_inside_the_window(at: str, days: str, problem: str | None) -> None:
    found = patch_schedule.window_problems(
        patch_schedule.parse_time(at), patch_schedule.parse_days(days), at, days
    )
    assert found == [] if problem is None else problem in found[0]


def test_days_and_times_are_parsed() -> None:
    assert patch_schedule.parse_days("Mon-Fri") == [0, 1, 2, 3, 4]
    assert patch_schedule.parse_days("tue,Thu") == [1, 3]
    assert patch_schedule.parse_days("Mon-Tue,Thu") == [0, 1, 3]
    assert patch_schedule.parse_time("09:30") == time(9, 30)
    for bad in ("Fri-Mon", "Monday", "", "Mon-"):
        with pytest.raises(UsageError, match="--days"):
            patch_schedule.parse_days(bad)
    for bad in ("9:30", "24:00", "10:60", "10h"):
        with pytest.raises(UsageError, match="--at"):
            patch_schedule.parse_time(bad)


def test_the_units_verify_and_the_calendar_is_paris_working_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is needed (Debian package systemd)")
    calendar = patch_schedule.on_calendar(time(10, 30), [0, 1, 2, 3, 4])
    assert calendar == "Mon,Tue,Wed,Thu,Fri *-*-* 10:30:00 Europe/Paris"
    shown = subprocess.run(
        [analyze, "calendar", "--iterations", "6", calendar],
        capture_output=True,
        text=True,
        check=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "Normalized form: Mon..Fri *-*-* 10:30:00 Europe/Paris" in shown
    elapses = [line for line in shown.splitlines() if "elapse:" in line or "Iter." in line]
    # six working days' 10:30 Paris time: 09:30 UTC in winter, 08:30 in summer, never a weekend
    assert len(elapses) == 6
    for line in elapses:
        assert line.split()[-4] in ("Mon", "Tue", "Wed", "Thu", "Fri"), line
        assert line.split()[-1] == "UTC" and line.split()[-2] in ("09:30:00", "08:30:00"), line

    monkeypatch.setenv("HOSTOPS_STATE_DIR", "/var/lib/hostops test")
    args = argparse.Namespace(
        group="web", order=None, contact=["it@client.example"], serial="1,50%"
    )
    argv = patch_schedule.command(args, [tmp_path / "inv.yml"])
    assert argv[1:] == [
        "patch", "run", "--inventory", str(tmp_path / "inv.yml"), "--limit", "web",
        "--mail-report", "--contact", "it@client.example", "--serial", "1,50%",
    ]  # fmt: skip
    environment = {"HOSTOPS_STATE_DIR": "/var/lib/hostops test", "HOSTOPS_MAIL_FROM": "a%b$c"}
    service = tmp_path / "hostops-patch-web.service"
    timer = tmp_path / "hostops-patch-web.timer"
    service.write_text(patch_schedule.service_unit("web", argv, environment))
    timer.write_text(patch_schedule.timer_unit("web", calendar))
    text = service.read_text()
    assert 'Environment="HOSTOPS_STATE_DIR=/var/lib/hostops test"' in text
    assert 'Environment="HOSTOPS_MAIL_FROM=a%%b$$c"' in text
    assert "TimeoutStartSec=4h" in text and "Type=oneshot" in text
    verify = subprocess.run(
        [analyze, "verify", str(timer), str(service)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    # the control: a unit with a bad OnCalendar does not verify
    bad = tmp_path / "bad" / "hostops-patch-web.timer"
    bad.parent.mkdir()
    bad.write_text(patch_schedule.timer_unit("web", "Mon *-*-* 25:00:00 Europe/Paris"))
    (bad.parent / service.name).write_text(text)
    verify = subprocess.run(
        [analyze, "verify", str(bad), str(bad.parent / service.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode != 0 or "25:00:00" in verify.stderr, verify


def test_schedule_writes_both_units_and_unschedule_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  children:\n    web:\n      hosts:\n        web01: {}\n")
    units = tmp_path / "units"
    units.mkdir()
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    from hostops import cli  # noqa: PLC0415
    base = ["patch", "schedule", "--group", "web", "--inventory", str(inventory)]
    assert cli.main([*base, "--at", "10:00", "--unit-dir", str(units)]) == 0
    assert sorted(p.name for p in units.iterdir()) == [
        "hostops-patch-web.service",
        "hostops-patch-web.timer",
    ]
    assert "--mail-report" in (units / "hostops-patch-web.service").read_text()
    assert cli.main(["patch", "unschedule", "--group", "web", "--unit-dir", str(units)]) == 0
    assert list(units.iterdir()) == []
    assert cli.main(["patch", "unschedule", "--group", "web", "--unit-dir", str(units)]) == 2


def test_the_mailed_report_names_only_the_customers_servers(tmp_path: Path) -> None:
    summary = {
        "run": {"started_at": "2027-01-12T10:30:00+01:00", "finished_at": "x"},
        "hosts": [
            {
                "host": "a",
                "status": "ok",
                "applied": [{"name": "pg", "from": "1", "to": "2", "approved_major": True}],
                "held_major": [{"name": "libpq5", "from": "1", "to": "2"}],
                "failed": [],
                "error": None,
            },
            {"host": "b", "status": "failed", "applied": [], "held_major": [], "failed": []},
        ],
        "majors": [
            {"kind": "refused", "host": "a", "package": "libpq5", "reference": "t 9"},
            {"kind": "refused", "host": "b", "package": "x", "reference": "t 8"},
        ],
    }
    body = patch_schedule.report_notice("it@a.example", ["a"], summary).body
    assert "pg 1 -> 2 (mise à jour majeure approuvée)" in body
    assert "majeure en attente de votre accord : libpq5 1 -> 2" in body
    assert "a : libpq5 (réf. t 9)" in body
    assert "Serveur b" not in body and "t 8" not in body
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    deliveries = patch_schedule.mail_reports({"it@a.example": ["a"]}, tmp_path)
    assert deliveries[0]["sent"] is False and (tmp_path / "report-mail-1.eml").exists()


# -- the module's choice of the approved majors ----------------------------------------


def test_only_the_approved_majors_leave_the_held_ones() -> None:
    from hostops.module_utils.apt_updates import (  # noqa: PLC0415
        HELD_APT_MARK,
        HELD_MAJOR,
        Change,
        Held,
        approved_updates,
    )

    pg = Change("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1")
    libpq = Change("libpq5", "15.18-0+deb12u1", "15.20-0+deb12u1")
    php = Change("php8.2-fpm", "8.2.32-1", "8.3.1-1")
    held = [Held(pg, HELD_MAJOR), Held(libpq, HELD_MAJOR), Held(php, HELD_APT_MARK)]
    installed = {
        "postgresql-15": "15.18-0+deb12u1",
        "libpq5": "15.18-0+deb12u1",
        "nginx": "1.26.3-3",
    }
    approved: dict[str, str | None] = {
        "postgresql-15": None,  # the candidate
        "php8.2-fpm": None,  # on hold with apt-mark: stays held
        "nginx": None,  # nothing pending
        "absent": "1.0-1",
    }
    changes, still, outcomes, _with = approved_updates(held, approved, installed)
    assert changes == [pg]
    assert [entry.change.name for entry in still] == ["libpq5", "php8.2-fpm"]
    assert outcomes["php8.2-fpm"]["outcome"] == "held"
    assert outcomes["php8.2-fpm"]["reason"] == HELD_APT_MARK
    assert outcomes["nginx"]["outcome"] == "up to date"
    assert outcomes["absent"]["outcome"] == "not installed"
    # an approved version: exactly it; one already installed: up to date; one the
    # archive does not offer beyond what is installed: held
    changes, _still, _outcomes, _with = approved_updates(
        held, {"postgresql-15": "15.19-0+deb12u1"}, installed
    )
    assert changes == [Change("postgresql-15", pg.installed, "15.19-0+deb12u1")]
    changes, _still, outcomes, _with = approved_updates(
        held, {"postgresql-15": "15.18-0+deb12u1"}, installed
    )
    assert changes == [] and outcomes["postgresql-15"]["outcome"] == "up to date"
    changes, _still, outcomes, _with = approved_updates(
        [], {"libpq5": "15.30-0+deb12u1"}, installed
    )
    assert changes == [] and outcomes["libpq5"]["outcome"] == "held"
    # the packages built from the same source come with it, at the same version
    sources = {"postgresql-15": "postgresql-15", "libpq5": "postgresql-15", "php8.2-fpm": "php8.2"}
    changes, still, outcomes, siblings = approved_updates(
        held, {"postgresql-15": None}, installed, sources
    )
    assert changes == [pg, libpq] and siblings == {"libpq5": "postgresql-15"}
    assert [entry.change.name for entry in still] == ["php8.2-fpm"]
    assert outcomes == {}
