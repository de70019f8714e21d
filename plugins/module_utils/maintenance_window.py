# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract's maintenance calendar: may routine work start at a given moment?

The contract (§4.1.3) runs maintenance "on working days and working hours" and
strongly discourages updates after 16:00 on weekdays, on Friday afternoons, at
weekends, on afternoons of the eve of a public holiday and on public holidays. In
time, that reads (hours are :class:`WindowConfig` fields):

* open Monday to Friday from ``open_time`` (09:00) to ``close_time`` (16:00),
  Europe/Paris wall-clock time, whatever the season;
* closed at weekends and on French public holidays (metropolitan France: the
  ``holidays`` package without a subdivision, so Alsace-Moselle's Good Friday and
  26 December are working days);
* closed from ``afternoon_start`` (12:00) on Fridays and on the eve of a public
  holiday, the eve being the calendar day before it (31 December, 13 July, ...).

Holiday names are the ``holidays`` package's French names ("Noël", "Assomption"),
asked for explicitly: left to itself the package picks the language from the
process's locale. This file runs on the controller only, so it may use ``holidays``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    import holidays
except ImportError:  # the collection's import sanity test has no third-party packages
    holidays = None  # type: ignore[assignment]

HOLIDAY_LANGUAGE = "fr"
_SATURDAY, _FRIDAY = 5, 4
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SEARCH_DAYS = 31  # France never has more than a few closed days in a row


@dataclass(frozen=True)
class WindowConfig:
    """Working hours, as local wall-clock times in ``timezone``."""

    open_time: time = time(9, 0)
    close_time: time = time(16, 0)
    afternoon_start: time = time(12, 0)
    timezone: str = "Europe/Paris"

    def __post_init__(self) -> None:
        for name in ("open_time", "close_time", "afternoon_start"):
            if getattr(self, name).tzinfo is not None:
                raise ValueError(f"{name} must be a wall-clock time without a time zone")
        if not self.open_time < self.afternoon_start <= self.close_time:
            raise ValueError(
                "working hours must satisfy open_time < afternoon_start <= close_time, got "
                f"{self.open_time:%H:%M}, {self.afternoon_start:%H:%M}, {self.close_time:%H:%M}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {self.timezone!r}") from err


DEFAULT_CONFIG = WindowConfig()


@dataclass(frozen=True)
class WindowStatus:
    """The answer of :func:`check_window`.

    ``next_open`` is set when closed, ``closes_at`` when open; both are aware
    datetimes in the configured time zone, like ``local_time``.
    """

    open: bool
    reason: str
    local_time: datetime
    next_open: datetime | None = None
    closes_at: datetime | None = None


@functools.lru_cache(maxsize=16)
def _holidays_of(year: int) -> dict[date, str]:
    """Metropolitan France's public holidays of one year, with their French names."""
    if holidays is None:
        raise RuntimeError("the maintenance calendar needs the Python package 'holidays'")
    calendar = holidays.country_holidays("FR", years=year, language=HOLIDAY_LANGUAGE)
    return dict(calendar.items())


def public_holiday(day: date) -> str | None:
    """The name of the public holiday on ``day`` ("Lundi de Pâques"), or None."""
    return _holidays_of(day.year).get(day)


def _is_working_day(day: date) -> bool:
    return day.weekday() < _SATURDAY and public_holiday(day) is None


def _afternoon_closure(day: date) -> str | None:
    """Why the afternoon of working day ``day`` is closed, or None if it is not."""
    tomorrow = public_holiday(day + timedelta(days=1))
    if tomorrow is not None:
        return f"eve of a public holiday ({tomorrow}) afternoon"
    if day.weekday() == _FRIDAY:
        return "Friday afternoon"
    return None


def _at(day: date, wall_time: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``wall_time`` in ``zone``, pushed forward if it falls in a DST gap."""
    return datetime.combine(day, wall_time, tzinfo=zone).astimezone(UTC).astimezone(zone)


def _next_open(local: datetime, config: WindowConfig, zone: ZoneInfo) -> datetime:
    """The first opening after ``local``, which is outside the window."""
    today = local.date()
    if _is_working_day(today) and local.time() < config.open_time:
        return _at(today, config.open_time, zone)
    for offset in range(1, _SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        if _is_working_day(day):
            return _at(day, config.open_time, zone)
    raise RuntimeError(f"no working day within {_SEARCH_DAYS} days after {today}")


def check_window(at: datetime, config: WindowConfig = DEFAULT_CONFIG) -> WindowStatus:
    """Whether routine maintenance may run at ``at``, and why not or until when.

    ``at`` must be timezone-aware (any offset; it is converted to the configured
    zone). Reasons when closed: ``public holiday: Noël``, ``weekend (Saturday)``,
    ``before opening hours (09:00)``, ``Friday afternoon``,
    ``eve of a public holiday (Assomption) afternoon``, ``after 16:00``; a public
    holiday on a weekend is named as the holiday.

    Raises:
        ValueError: ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"{at.isoformat()} has no UTC offset: give one explicitly (+01:00, Z, ...)"
        )
    zone = ZoneInfo(config.timezone)
    local = at.astimezone(zone)
    day, wall_time = local.date(), local.time()

    holiday = public_holiday(day)
    if holiday is not None:
        reason = f"public holiday: {holiday}"
    elif day.weekday() >= _SATURDAY:
        reason = f"weekend ({_WEEKDAY_NAMES[day.weekday()]})"
    elif wall_time < config.open_time:
        reason = f"before opening hours ({config.open_time:%H:%M})"
    else:
        afternoon = _afternoon_closure(day)
        closing = config.afternoon_start if afternoon else config.close_time
        if wall_time < closing:
            return WindowStatus(
                open=True,
                reason="working hours",
                local_time=local,
                closes_at=_at(day, closing, zone),
            )
        reason = afternoon or f"after {config.close_time:%H:%M}"
    return WindowStatus(
        open=False, reason=reason, local_time=local, next_open=_next_open(local, config, zone)
    )


# The moments a command takes: beyond them a date is a typing mistake, and the first and
# last years of Python's calendar overflow once moved to another time zone.
FIRST_YEAR, LAST_YEAR = 1970, 2999


def parse_at(text: str) -> datetime:
    """Read an ISO 8601 date and time with a UTC offset or ``Z``, e.g. ``2027-01-12T10:30+01:00``.

    Raises:
        ValueError: not ISO 8601, or no offset (a wall-clock time is ambiguous).
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time") from err
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: add one (+01:00, Z, ...)")
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:  # far years overflow once moved to UTC
        raise ValueError(f"{text!r} is not between the years {FIRST_YEAR} and {LAST_YEAR}")
    return moment
