"""``hostops maintenance announce``: 8 calendar days' notice (§5.5), the customer email."""

from __future__ import annotations

import email
import email.message
import email.policy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hostops import cli
from hostops.maintenance import notices

PARIS = ZoneInfo("Europe/Paris")
# "Now" in these tests: Monday 4 January 2027, 17:00 Paris time.
NOW = datetime(2027, 1, 4, 17, 0, tzinfo=PARIS)


@pytest.fixture
def announce(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Any:
    """Run ``hostops maintenance announce ARGS`` at NOW; return (status, out, err)."""
    monkeypatch.setattr(
        cli,
        "COMMAND_MODULES",
        tuple(dict.fromkeys((*cli.COMMAND_MODULES, "hostops.maintenance.cli"))),
    )
    monkeypatch.setattr(notices, "now", lambda: NOW)
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        status = cli.main(["maintenance", "announce", *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def announced(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "maintenance").glob("*/announce.eml"))


def read(path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


BASE = ("--hosts", "web01.martin.example", "--duration", "90", "--contact", "it@martin.example")


@pytest.mark.parametrize(
    ("start", "days"),
    [
        ("2027-01-05T10:00+01:00", 1),
        ("2027-01-11T15:00+01:00", 7),
        ("2027-01-11T22:59:00Z", 7),  # 23:59 in Paris: still the 11th
    ],
)
def test_less_than_8_calendar_days_is_refused_naming_start(
    announce: Any, tmp_path: Path, start: str, days: int
) -> None:
    status, _out, err = announce(*BASE, "--start", start)
    assert status == 2
    assert err.startswith(f"hostops: --start: {start} is {days} calendar day(s) away")
    assert "at least 8 calendar days before (contract §5.5): start on 2027-01-12" in err
    assert announced(tmp_path) == []


@pytest.mark.parametrize(
    "start",
    [
        "2027-01-12T09:00+01:00",  # 8 calendar days, though less than 8 x 24 hours
        "2027-01-11T23:30:00Z",  # 00:30 on the 12th in Paris
        "2027-03-01T10:00+01:00",
    ],
)
def test_8_calendar_days_or_more_is_accepted(announce: Any, tmp_path: Path, start: str) -> None:
    status, _out, err = announce(*BASE, "--start", start)
    assert status == 0, err
    assert len(announced(tmp_path)) == 1


def test_the_email_gives_date_start_in_paris_time_and_duration(
    announce: Any, tmp_path: Path
) -> None:
    # 08:00 UTC in summer is 10:00 in Paris (CEST): the email speaks Paris time.
    status, out, _err = announce(
        "--hosts",
        "web01.martin.example,web02.martin.example",
        "--start",
        "2027-07-06T08:00:00Z",
        "--duration",
        "150",
        "--contact",
        "it@martin.example",
    )
    assert status == 0
    [path] = announced(tmp_path)
    message = read(path)
    assert message["To"] == "it@martin.example"
    assert message["From"] == "infogerance@alixans.example"
    assert (
        message["Subject"]
        == "Maintenance planifiée le mardi 6 juillet 2027 à 10:00 (heure de Paris)"
    )
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert "Date : mardi 6 juillet 2027" in body
    assert "Heure de début : 10:00 (heure de Paris)" in body
    assert "Durée prévue : 2 heures 30 (fin prévue vers 12:30)" in body
    assert "Serveurs concernés : web01.martin.example, web02.martin.example" in body
    assert message["Subject"] in out
    assert "not sent" in out
    record = json.loads((path.parent / "announce.json").read_text())
    assert record["start"] == "2027-07-06T10:00+02:00"
    assert record["notice_days"] == 183
    assert record["start_in_window"] is True


def test_a_start_outside_the_window_is_announced_with_a_note(announce: Any) -> None:
    status, out, _err = announce(*BASE, "--start", "2027-01-16T10:00+01:00")  # a Saturday
    assert status == 0
    assert "note: the start is outside the maintenance window (weekend (Saturday))" in out


def test_an_emergency_may_start_tomorrow_and_says_why(announce: Any, tmp_path: Path) -> None:
    status, _out, err = announce(
        *BASE, "--start", "2027-01-05T10:00+01:00", "--emergency", "--reason", "disque en panne"
    )
    assert status == 0, err
    message = read(announced(tmp_path)[0])
    assert message["Subject"].startswith("Intervention d'urgence le mardi 5 janvier 2027 à 10:00")
    assert "Motif : disque en panne" in message.get_body().get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--start", "2027-01-04T16:00+01:00"), "--start: 2027-01-04T16:00+01:00 is in the past"),
        (("--start", "2027-02-01 10:00"), "--start: '2027-02-01 10:00' has no UTC offset"),
        (("--start", "2027-02-01T10:00Z", "--duration", "0"), "--duration: 0 is not 1..10080"),
        (
            ("--start", "2027-01-05T10:00+01:00", "--emergency"),
            "--reason: required with --emergency",
        ),
    ],
)
def test_bad_arguments(announce: Any, arguments: tuple[str, ...], message: str) -> None:
    status, _out, err = announce(*BASE, *arguments)
    assert status == 2
    assert message in err


def test_a_contact_is_required_and_checked(announce: Any) -> None:
    status, _out, err = announce(
        "--hosts", "a", "--start", "2027-02-01T10:00Z", "--duration", "30", "--contact", "x@"
    )
    assert status == 2
    assert "--contact: 'x@' is not an email address" in err
    status, _out, err = announce("--hosts", "a", "--start", "2027-02-01T10:00Z", "--duration", "30")
    assert status == 2
    assert "--contact: required" in err


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "1 minute"),
        (45, "45 minutes"),
        (60, "1 heure"),
        (90, "1 heure 30"),
        (125, "2 heures 05"),
    ],
)
def test_french_duration(minutes: int, text: str) -> None:
    assert notices.french_duration(minutes) == text


def test_calendar_days_cross_the_dst_change() -> None:
    # Saturday 27 March 2027 at 23:30 to Monday 29 March 00:30 (the clocks go forward on
    # the 28th): two calendar days, though only 24 hours.
    before = datetime(2027, 3, 27, 23, 30, tzinfo=PARIS)
    after = datetime(2027, 3, 29, 0, 30, tzinfo=PARIS)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=24)
    assert notices.calendar_days_until(after, before) == 2
