"""The maintenance calendar (§4.1.3) and the ``updates``/``window`` commands."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from hostops.cli import main
from hostops.core.errors import UsageError
from hostops.module_utils.maintenance_window import (
    WindowConfig,
    check_window,
    parse_at,
    public_holiday,
)
from hostops.patching import updates_cli

PARIS = ZoneInfo("Europe/Paris")


def paris(text: str) -> datetime:
    """``2027-01-12 10:30`` as Paris wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        ("2027-01-01", "Jour de l'an"),
        ("2027-03-29", "Lundi de Pâques"),
        ("2027-05-06", "Ascension"),
        ("2027-05-17", "Lundi de Pentecôte"),
        ("2027-07-14", "Fête nationale"),
        ("2027-08-15", "Assomption"),
        ("2027-11-01", "Toussaint"),
        ("2027-11-11", "Armistice"),
        ("2027-12-25", "Noël"),
        ("2028-04-17", "Lundi de Pâques"),
        ("2028-05-01", "Fête du Travail"),
        ("2028-05-08", "Fête de la Victoire"),
        ("2028-05-25", "Ascension"),
        ("2028-06-05", "Lundi de Pentecôte"),
        # Alsace-Moselle's own days are working days here.
        ("2027-03-26", None),  # Good Friday
        ("2028-04-14", None),
        ("2028-12-26", None),  # Saint-Étienne
        ("2027-01-12", None),
    ],
)
def test_public_holidays_of_metropolitan_france(day: str, name: str | None) -> None:
    assert public_holiday(datetime.fromisoformat(day).date()) == name


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        # Ordinary weekday: 09:00 and 16:00 boundaries.
        ("2027-01-12 08:59", "before opening hours (09:00)"),
        ("2027-01-12 09:00", None),
        ("2027-01-12 15:59:59.999999", None),
        ("2027-01-12 16:00", "after 16:00"),
        ("2027-01-12 23:30", "after 16:00"),
        ("2027-01-12 00:00", "before opening hours (09:00)"),
        # Fridays close at 12:00.
        ("2027-01-15 09:00", None),
        ("2027-01-15 11:59", None),
        ("2027-01-15 12:00", "Friday afternoon"),
        ("2027-01-15 18:00", "Friday afternoon"),
        # Weekends.
        ("2027-01-16 10:00", "weekend (Saturday)"),
        ("2027-01-17 10:00", "weekend (Sunday)"),
        # Public holidays, Easter-based ones included; a holiday on a weekend is named.
        ("2027-03-29 10:00", "public holiday: Lundi de Pâques"),
        ("2027-05-06 10:00", "public holiday: Ascension"),
        ("2027-05-17 10:00", "public holiday: Lundi de Pentecôte"),
        ("2028-04-17 10:00", "public holiday: Lundi de Pâques"),
        ("2028-05-25 10:00", "public holiday: Ascension"),
        ("2028-06-05 10:00", "public holiday: Lundi de Pentecôte"),
        ("2027-07-14 10:00", "public holiday: Fête nationale"),
        ("2027-12-25 10:00", "public holiday: Noël"),
        # Eves: the morning is open, the afternoon closed.
        ("2027-07-13 11:59", None),
        ("2027-07-13 12:00", "eve of a public holiday (Fête nationale) afternoon"),
        ("2027-05-05 10:00", None),
        ("2027-05-05 14:00", "eve of a public holiday (Ascension) afternoon"),
        ("2028-08-14 12:30", "eve of a public holiday (Assomption) afternoon"),
        ("2026-12-31 11:00", None),
        ("2026-12-31 12:00", "eve of a public holiday (Jour de l'an) afternoon"),
        # An eve on a Friday is named as the eve.
        ("2027-12-31 11:59", None),
        ("2027-12-31 12:00", "eve of a public holiday (Jour de l'an) afternoon"),
        # The day after a holiday is an ordinary day ("pont" days are not holidays).
        ("2027-05-07 10:00", None),
        # Alsace-Moselle's Good Friday and Saint-Étienne are working days here.
        ("2027-03-26 10:00", None),
        ("2028-12-26 14:00", None),
        # 24 December is Noël's eve (and, in 2027, a Friday).
        ("2027-12-24 12:00", "eve of a public holiday (Noël) afternoon"),
        ("2027-12-23 14:00", None),
    ],
)
def test_check_window(at: str, reason: str | None) -> None:
    status = check_window(paris(at))
    assert status.open is (reason is None)
    assert status.reason == (reason or "working hours")
    assert status.local_time == paris(at)


@pytest.mark.parametrize(
    ("at", "closes_at"),
    [
        ("2027-01-12 10:30", "2027-01-12 16:00"),
        ("2027-01-15 10:30", "2027-01-15 12:00"),  # Friday
        ("2027-07-13 09:00", "2027-07-13 12:00"),  # eve of Fête nationale
        ("2027-12-31 11:00", "2027-12-31 12:00"),  # eve of Jour de l'an, a Friday
    ],
)
def test_open_window_tells_when_it_closes(at: str, closes_at: str) -> None:
    status = check_window(paris(at))
    assert status.open
    assert status.closes_at == paris(closes_at)
    assert status.closes_at.tzinfo is PARIS
    assert status.next_open is None


@pytest.mark.parametrize(
    ("at", "next_open"),
    [
        ("2027-01-12 07:00", "2027-01-12 09:00"),  # before opening: the same day
        ("2027-01-12 16:00", "2027-01-13 09:00"),
        ("2027-01-15 12:00", "2027-01-18 09:00"),  # Friday afternoon: Monday
        ("2027-01-16 10:00", "2027-01-18 09:00"),  # Saturday
        # Long weekends around Easter Monday and Pentecost Monday.
        ("2027-03-26 14:00", "2027-03-30 09:00"),
        ("2028-04-14 12:00", "2028-04-18 09:00"),
        ("2027-05-14 13:00", "2027-05-18 09:00"),
        ("2028-06-02 12:00", "2028-06-06 09:00"),
        # Ascension Thursday: the Friday after opens.
        ("2027-05-05 12:00", "2027-05-07 09:00"),
        ("2027-05-06 08:00", "2027-05-07 09:00"),  # before opening on a holiday
        # The next working day is itself an eve: it opens at 09:00 all the same.
        ("2027-07-12 16:30", "2027-07-13 09:00"),
        ("2028-07-12 17:00", "2028-07-13 09:00"),
        ("2027-07-13 12:00", "2027-07-15 09:00"),
        # Across the year's end: 1 January 2027 is a Friday, 2028's a Saturday.
        ("2026-12-31 12:00", "2027-01-04 09:00"),
        ("2027-12-31 12:00", "2028-01-03 09:00"),
        # Two holidays on two Mondays in a row (1 and 8 May 2028).
        ("2028-05-05 13:00", "2028-05-09 09:00"),
    ],
)
def test_closed_window_tells_when_it_opens(at: str, next_open: str) -> None:
    status = check_window(paris(at))
    assert not status.open
    assert status.next_open == paris(next_open)
    assert status.next_open.tzinfo is PARIS
    assert status.next_open.time() == time(9, 0)
    assert status.closes_at is None


@pytest.mark.parametrize(
    ("at", "is_open", "local", "offset_hours"),
    [
        # 07:30 UTC is 09:30 in summer (open) but 08:30 in winter (closed).
        ("2027-07-06T07:30:00Z", True, "2027-07-06 09:30", 2),
        ("2027-01-12T07:30:00Z", False, "2027-01-12 08:30", 1),
        # Around the October 2027 change (Sunday 31st): Friday in summer time,
        # Tuesday in winter time (Monday 1 November is Toussaint).
        ("2027-10-29T07:30:00Z", True, "2027-10-29 09:30", 2),
        ("2027-11-02T07:30:00Z", False, "2027-11-02 08:30", 1),
        ("2027-11-02T14:59:00Z", True, "2027-11-02 15:59", 1),
        ("2027-11-02T15:00:00Z", False, "2027-11-02 16:00", 1),
        # Other offsets are converted too.
        ("2027-01-12T18:30:00+09:00", True, "2027-01-12 10:30", 1),
        ("2027-01-12T04:30:00-05:00", True, "2027-01-12 10:30", 1),
    ],
)
def test_check_window_converts_to_paris_time(
    at: str, is_open: bool, local: str, offset_hours: int
) -> None:
    status = check_window(parse_at(at))
    assert status.open is is_open
    assert status.local_time.tzinfo is PARIS
    assert status.local_time.replace(tzinfo=None) == datetime.fromisoformat(local)
    assert status.local_time.utcoffset() == timedelta(hours=offset_hours)


@pytest.mark.parametrize(
    ("at", "next_open", "offset_hours"),
    [
        # Spring forward on Sunday 28 March 2027; Monday 29th is Easter Monday.
        ("2027-03-28T00:30:00Z", "2027-03-30T09:00:00+02:00", 2),  # 01:30 CET
        ("2027-03-28T01:30:00Z", "2027-03-30T09:00:00+02:00", 2),  # 03:30 CEST
        # Fall back on Sunday 31 October 2027; Monday 1 November is Toussaint.
        ("2027-10-31T00:30:00Z", "2027-11-02T09:00:00+01:00", 1),  # 02:30 CEST
        ("2027-10-31T01:30:00Z", "2027-11-02T09:00:00+01:00", 1),  # 02:30 CET
        # Friday before the spring change: next opening is after it, in summer time.
        ("2027-03-26T15:00:00Z", "2027-03-30T09:00:00+02:00", 2),
    ],
)
def test_next_open_across_dst_changes(at: str, next_open: str, offset_hours: int) -> None:
    status = check_window(parse_at(at))
    assert not status.open
    assert status.next_open is not None
    assert status.next_open == parse_at(next_open)
    assert status.next_open.utcoffset() == timedelta(hours=offset_hours)
    assert status.next_open.time() == time(9, 0)


def test_check_window_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="has no UTC offset"):
        check_window(datetime(2027, 1, 12, 10, 30))


def test_check_window_accepts_utc_and_fixed_offsets() -> None:
    utc = check_window(datetime(2027, 1, 12, 9, 30, tzinfo=UTC))
    fixed = check_window(datetime(2027, 1, 12, 10, 30, tzinfo=timezone(timedelta(hours=1))))
    assert utc.local_time == fixed.local_time == paris("2027-01-12 10:30")


CUSTOM = WindowConfig(open_time=time(8, 0), close_time=time(18, 0), afternoon_start=time(13, 0))


@pytest.mark.parametrize(
    ("at", "reason", "edge"),
    [
        ("2027-01-12 07:59", "before opening hours (08:00)", "2027-01-12 08:00"),
        ("2027-01-12 08:00", None, "2027-01-12 18:00"),
        ("2027-01-12 17:59", None, "2027-01-12 18:00"),
        ("2027-01-12 18:00", "after 18:00", "2027-01-13 08:00"),
        ("2027-01-15 12:59", None, "2027-01-15 13:00"),
        ("2027-01-15 13:00", "Friday afternoon", "2027-01-18 08:00"),
    ],
)
def test_working_hours_are_configurable(at: str, reason: str | None, edge: str) -> None:
    status = check_window(paris(at), CUSTOM)
    assert status.open is (reason is None)
    assert status.reason == (reason or "working hours")
    assert (status.closes_at if status.open else status.next_open) == paris(edge)


def test_next_open_in_a_dst_gap_is_a_real_wall_clock_time() -> None:
    """Paris changes on Sunday nights; a zone that changed on a Monday shows the gap.

    Tehran skipped from 00:00 to 01:00 on Monday 22 March 2021: opening at 00:30
    that day means 01:30 local time (+04:30), the same instant as 00:30 +03:30.
    """
    config = WindowConfig(open_time=time(0, 30), timezone="Asia/Tehran")
    status = check_window(datetime(2021, 3, 21, 12, 0, tzinfo=ZoneInfo("Asia/Tehran")), config)
    assert status.next_open is not None
    assert status.next_open.time() == time(1, 30)
    assert status.next_open.utcoffset() == timedelta(hours=4, minutes=30)
    assert status.next_open == datetime(2021, 3, 21, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"open_time": time(12, 0)}, "open_time < afternoon_start <= close_time"),
        ({"afternoon_start": time(17, 0)}, "open_time < afternoon_start <= close_time"),
        ({"close_time": time(8, 0)}, "open_time < afternoon_start <= close_time"),
        ({"open_time": time(9, 0, tzinfo=UTC)}, "open_time must be a wall-clock time"),
        ({"timezone": "Europe/Nowhere"}, "unknown time zone 'Europe/Nowhere'"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
    ],
)
def test_window_config_rejects(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        WindowConfig(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-01-12T10:30:00Z", datetime(2027, 1, 12, 10, 30, tzinfo=UTC)),
        ("2027-01-12T10:30+01:00", datetime(2027, 1, 12, 9, 30, tzinfo=UTC)),
        ("2027-01-12 10:30:15.5-05:00", datetime(2027, 1, 12, 15, 30, 15, 500000, tzinfo=UTC)),
        (" 2027-07-06T07:30Z ", datetime(2027, 7, 6, 7, 30, tzinfo=UTC)),
    ],
)
def test_parse_at(text: str, expected: datetime) -> None:
    parsed = parse_at(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-01-12T10:30", "has no UTC offset"),
        ("2027-01-12", "has no UTC offset"),
        ("tomorrow", "is not an ISO 8601 date and time"),
        ("2027-13-01T10:00Z", "is not an ISO 8601 date and time"),
        ("", "is not an ISO 8601 date and time"),
    ],
)
def test_parse_at_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_at(text)


# The commands, through a parser built the way hostops.cli builds its own.


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hostops")
    updates_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


@pytest.mark.parametrize(
    ("old", "new", "printed"),
    [
        ("1.26.3-3+deb13u10", "1.26.3-3+deb13u11", "minor"),
        ("15.18-0+deb12u1", "15.20-0+deb12u1", "major"),
        ("1:10.11.19-0+deb12u1", "1:10.11.19-0+deb12u1", "unchanged"),
    ],
)
def test_updates_classify(
    old: str, new: str, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["updates", "classify", "--package", "pkg", "--from", old, "--to", new]) == 0
    assert capsys.readouterr().out == f"{printed}\n"


def test_updates_classify_names_each_bad_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError) as caught:
        run(["updates", "classify", "--package", "nginx", "--from", "xx", "--to", "1.0-"])
    assert caught.value.exit_status == 2
    assert caught.value.problems == [
        "--from: 'xx' is not a Debian version: version number does not start with a digit"
        " (package nginx)",
        "--to: '1.0-' is not a Debian version: revision number is empty (package nginx)",
    ]
    assert capsys.readouterr().out == ""


def test_updates_classify_needs_its_options() -> None:
    with pytest.raises(SystemExit) as caught:
        run(["updates", "classify", "--from", "1.0", "--to", "1.1"])
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("at", "status", "printed"),
    [
        ("2027-01-12T10:30+01:00", 0, "open (Europe/Paris 2027-01-12 10:30, closes at 16:00)"),
        ("2027-07-06T07:30Z", 0, "open (Europe/Paris 2027-07-06 09:30, closes at 16:00)"),
        ("2027-07-13T08:00Z", 0, "open (Europe/Paris 2027-07-13 10:00, closes at 12:00)"),
        (
            "2027-01-12T16:00+01:00",
            1,
            "closed: after 16:00; next opening: 2027-01-13 09:00 (Europe/Paris)",
        ),
        (
            "2027-03-26T13:00+01:00",
            1,
            "closed: Friday afternoon; next opening: 2027-03-30 09:00 (Europe/Paris)",
        ),
        (
            "2027-08-15T10:00+02:00",
            1,
            "closed: public holiday: Assomption; next opening: 2027-08-16 09:00 (Europe/Paris)",
        ),
    ],
)
def test_window_check(
    at: str, status: int, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["window", "check", "--at", at]) == status
    assert capsys.readouterr().out == f"{printed}\n"


def test_window_check_defaults_to_now(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class FrozenClock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> FrozenClock:
            assert tz is UTC
            return cls(2027, 5, 6, 8, 0, tzinfo=UTC)

    monkeypatch.setattr(updates_cli, "datetime", FrozenClock)
    assert run(["window", "check"]) == 1
    assert capsys.readouterr().out == (
        "closed: public holiday: Ascension; next opening: 2027-05-07 09:00 (Europe/Paris)\n"
    )


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2027-01-12T10:30", "--at: '2027-01-12T10:30' has no UTC offset"),
        ("noon", "--at: 'noon' is not an ISO 8601 date and time"),
    ],
)
def test_window_check_rejects_bad_at(at: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(["window", "check", "--at", at])
    assert caught.value.exit_status == 2
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("at", "status", "is_open", "next_open"),
    [
        ("2026-12-04T10:00:00+01:00", 0, True, None),
        ("2026-12-05T10:00:00+01:00", 1, False, "2026-12-07T09:00+01:00"),
    ],
)
def test_window_check_as_json(
    at: str, status: int, is_open: bool, next_open: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["window", "check", "--at", at, "--json"]) == status
    answer = json.loads(capsys.readouterr().out)
    assert answer["open"] is is_open
    assert answer["next_open"] == next_open
    assert answer["timezone"] == "Europe/Paris"
    assert (answer["closes_at"] is not None) is is_open
