# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract's service levels (§5): one month's availability and the credits it earns.

One reading of §5, the one ``docs/sla.md`` documents with a worked example:

* a month is a calendar month in Europe/Paris, with its real length (743 h in March,
  745 h in October: the DST changes); incidents are clipped to it;
* every instant of the month belongs to at most one cause. Overlapping incidents count
  once, and an instant several incidents cover goes to the first of: the client, an
  excluded planned interruption, the provider (:data:`PRECEDENCE`). Exclusions win:
  the provider is charged only for time nothing excludes, which is also what §5.1's
  formula gives when overlaps count once;
* a planned interruption is excluded only if it was announced at least 192 hours
  (8 calendar days, §5.5) before its start; otherwise it is the provider's;
* availability = (month - client time - provider time) / (month - client time) x 100,
  excluded planned time counting as neither; 100% when the client's incidents cover
  the whole month; the target (99.9%) is met when availability >= 99.9%, compared exactly;
* availability credit, only when the target is missed: 2.5% of the monthly fee per
  complete 60 minutes of provider time, capped at the fee;
* GTR credit, per incident counted as the provider's that has a ticket and starts in
  the month: overrun = (end - ticket opening) - GTR, over 0 and up to 1 h 20% of the fee,
  up to 2 h 30%, up to 3 h 40%, more 50%; each incident on its own (overlaps do not
  matter here), the month's sum capped at the fee;
* money is :class:`~decimal.Decimal`, rounded half up to the cent once per credit; the
  total is the sum of the two rounded credits.

:func:`read_month` checks a plain mapping (an incidents file as YAML loads it) and
:func:`compute` applies the rules. Standard library only; runs on the controller.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

TIMEZONE = "Europe/Paris"
CAUSES = ("provider", "client", "planned")
TARGET_PERCENT = Decimal("99.9")
NOTICE = timedelta(hours=192)  # §5.5: announced at least 8 calendar days before
AVAILABILITY_CREDIT_PER_HOUR = Decimal("0.025")  # 2.5% of the monthly fee per 60 minutes
# (overrun up to and including, share of the monthly fee); beyond the last: GTR_CREDIT_OVER.
GTR_STEPS = (
    (timedelta(hours=1), Decimal("0.20")),
    (timedelta(hours=2), Decimal("0.30")),
    (timedelta(hours=3), Decimal("0.40")),
)
GTR_CREDIT_OVER = Decimal("0.50")
PERCENT_DECIMALS = 6

# Bounds that keep the arithmetic exact and the messages short.
MAX_FEE_EUR = Decimal(10) ** 9
MAX_GTR_HOURS = Decimal(8760)  # a year
MIN_YEAR, MAX_YEAR = 1970, 9998

Cause = Literal["provider", "client", "planned"]
Category = Literal["client", "excluded_planned", "provider"]
# Who an instant covered by several incidents belongs to: the first category covering it.
PRECEDENCE: tuple[Category, ...] = ("client", "excluded_planned", "provider")

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_TOP_KEYS = ("month", "monthly_fee_eur", "gtr_hours", "incidents")
_INCIDENT_KEYS = ("start", "end", "cause", "ticket_opened", "announced")
_INCIDENT_REQUIRED = ("start", "end", "cause")
_CENT = Decimal("0.01")
_MICROSECOND = timedelta(microseconds=1)


class SlaInputError(ValueError):
    """An incidents file that does not say what the rules need; one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Incident:
    """One interruption, as ops recorded it. Times are aware datetimes."""

    start: datetime
    end: datetime
    cause: Cause
    ticket_opened: datetime | None = None
    announced: datetime | None = None  # planned interruptions only


@dataclass(frozen=True)
class Month:
    """A calendar month in Europe/Paris."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> datetime:
        """Midnight on the 1st, Paris time, as UTC."""
        return datetime(self.year, self.month, 1, tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """Midnight on the 1st of the next month, Paris time, as UTC."""
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return datetime(year, month, 1, tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)

    @property
    def length(self) -> timedelta:
        """The month's real length: 743 h for a March, 745 h for an October in Paris."""
        return self.end - self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class MonthInput:
    """What the calculator needs: the month, the service's fee and GTR, the incidents."""

    month: Month
    monthly_fee_eur: Decimal
    gtr: timedelta
    incidents: tuple[Incident, ...]


@dataclass(frozen=True)
class GtrCredit:
    """The GTR reading of one incident counted as the provider's, with a ticket."""

    index: int
    restoration: timedelta  # end - ticket opening
    overrun: timedelta  # restoration - GTR; 0 or less earns nothing
    share: Decimal  # of the monthly fee: 0, 0.20, 0.30, 0.40 or 0.50
    in_month: bool  # False: the incident started in another month, which credits it


@dataclass(frozen=True)
class MonthResult:
    """One month's service levels and credits."""

    month: Month
    monthly_fee_eur: Decimal
    gtr: timedelta
    client_time: timedelta
    excluded_planned_time: timedelta
    provider_time: timedelta  # the provider's counted unavailability
    availability: Fraction  # percent, exact
    target_met: bool
    availability_credit_eur: Decimal  # capped, to the cent
    gtr_credits: tuple[GtrCredit, ...]
    gtr_credit_eur: Decimal  # capped, to the cent
    notes: tuple[str, ...]

    @property
    def total_credit_eur(self) -> Decimal:
        return self.availability_credit_eur + self.gtr_credit_eur

    @property
    def availability_percent(self) -> Decimal:
        """Availability rounded down to PERCENT_DECIMALS places: never shows 99.9 for less."""
        scale = 10**PERCENT_DECIMALS
        floored = self.availability.numerator * scale // self.availability.denominator
        return Decimal(floored).scaleb(-PERCENT_DECIMALS)

    @property
    def complete_hours(self) -> int:
        return self.provider_time // timedelta(hours=1)


# -- The rules ------------------------------------------------------------------------------


def announced_in_time(incident: Incident) -> bool:
    """A planned interruption is excluded if announced at least 192 h before its start."""
    return (
        incident.cause == "planned"
        and incident.announced is not None
        and incident.start - incident.announced >= NOTICE
    )


def category(incident: Incident) -> Category:
    """Whose time the incident is: the client's, an excluded planned one, or the provider's."""
    if incident.cause == "client":
        return "client"
    if announced_in_time(incident):
        return "excluded_planned"
    return "provider"


def attribute(
    intervals: Iterable[tuple[datetime, datetime, Category]],
) -> dict[Category, timedelta]:
    """Time per category, each instant counted once, for the first category (PRECEDENCE)
    covering it. Intervals are half-open ``[start, end)`` and should already be clipped."""
    events: list[tuple[datetime, int, int]] = []
    for start, end, kind in intervals:
        if start < end:
            rank = PRECEDENCE.index(kind)
            events += [(start, rank, 1), (end, rank, -1)]
    events.sort(key=lambda event: event[0])
    totals = [timedelta(0)] * len(PRECEDENCE)
    covering = [0] * len(PRECEDENCE)
    previous: datetime | None = None
    for moment, rank, step in events:
        if previous is not None and moment > previous:
            owner = next((i for i, count in enumerate(covering) if count), None)
            if owner is not None:
                totals[owner] += moment - previous
        covering[rank] += step
        previous = moment
    return dict(zip(PRECEDENCE, totals, strict=True))


def gtr_share(overrun: timedelta) -> Decimal:
    """The share of the monthly fee an overrun of the GTR earns (0 when there is none)."""
    if overrun <= timedelta(0):
        return Decimal(0)
    for limit, share in GTR_STEPS:
        if overrun <= limit:
            return share
    return GTR_CREDIT_OVER


def target_met(provider_time: timedelta, client_time: timedelta, length: timedelta) -> bool:
    """availability >= 99.9%, exactly: 1000 x provider time <= month - client time."""
    return provider_time * 1000 <= length - client_time


def to_cent(amount: Decimal) -> Decimal:
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def compute(data: MonthInput) -> MonthResult:
    """Apply the rules of §5 (module docstring) to one month of incidents."""
    month, fee = data.month, data.monthly_fee_eur
    notes: list[str] = []
    intervals: list[tuple[datetime, datetime, Category]] = []
    credits: list[GtrCredit] = []
    for index, incident in enumerate(data.incidents):
        name = f"incidents[{index}]"
        kind = category(incident)
        start, end = max(incident.start, month.start), min(incident.end, month.end)
        if start < end:
            intervals.append((start, end, kind))
        elif incident.start < incident.end:
            notes.append(f"{name}: outside {month}: not counted")
            continue
        if incident.cause == "planned" and kind == "provider":
            notes.append(f"{name}: planned, {_late(incident)}: counted as the provider's (§5.5)")
        if kind == "provider" and incident.ticket_opened is not None:
            restoration = incident.end - incident.ticket_opened
            overrun = restoration - data.gtr
            in_month = month.contains(incident.start)
            credits.append(GtrCredit(index, restoration, overrun, gtr_share(overrun), in_month))
            if not in_month and overrun > timedelta(0):
                notes.append(
                    f"{name}: started before {month}: its GTR credit belongs to the month "
                    "it started in"
                )
    times = attribute(intervals)
    client, provider = times["client"], times["provider"]
    available = month.length - client
    if available:
        availability = 100 * Fraction(
            (available - provider) // _MICROSECOND, available // _MICROSECOND
        )
    else:  # the client's incidents cover the whole month: nothing is the provider's
        availability = Fraction(100)
    met = target_met(provider, client, month.length)
    hours = provider // timedelta(hours=1)
    availability_credit = (
        Decimal(0) if met else min(fee, fee * AVAILABILITY_CREDIT_PER_HOUR * hours)
    )
    gtr_credit = min(fee, fee * sum((c.share for c in credits if c.in_month), Decimal(0)))
    return MonthResult(
        month=month,
        monthly_fee_eur=fee,
        gtr=data.gtr,
        client_time=client,
        excluded_planned_time=times["excluded_planned"],
        provider_time=provider,
        availability=availability,
        target_met=met,
        availability_credit_eur=to_cent(availability_credit),
        gtr_credits=tuple(credits),
        gtr_credit_eur=to_cent(gtr_credit),
        notes=tuple(notes),
    )


def _late(incident: Incident) -> str:
    if incident.announced is None:
        return "without 'announced'"
    notice = incident.start - incident.announced
    if notice <= timedelta(0):
        return "announced after its start"
    return f"announced {format_duration(notice)} before its start (192 h needed)"


def format_duration(span: timedelta) -> str:
    """``0 s``, ``43 min 12 s``, ``745 h``, ``1 h 0 min 1 s`` (whole seconds, sign kept)."""
    seconds = int(span.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "min"), (seconds, "s")]
    while len(parts) > 1 and parts[-1][0] == 0:
        parts.pop()
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return sign + " ".join(f"{value} {unit}" for value, unit in parts)


# -- Reading an incidents file ----------------------------------------------------------------


def read_month(data: object) -> MonthInput:
    """Check an incidents file as YAML loads it (``docs/sla.md``) and return what it says.

    Times may be text (``"2027-04-06T10:00:00+02:00"``) or the datetimes YAML makes of
    unquoted timestamps; both need a UTC offset and whole seconds.

    Raises:
        SlaInputError: every problem, one ``FIELD: MESSAGE`` line each.
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise SlaInputError([f"the file must be a mapping with {_list(_TOP_KEYS)}, {_got(data)}"])
    problems += _keys(data, "", _TOP_KEYS, _TOP_KEYS)
    month = _month(data.get("month"), problems) if "month" in data else None
    fee = gtr = None
    if "monthly_fee_eur" in data:
        fee = _number(data["monthly_fee_eur"], "monthly_fee_eur", MAX_FEE_EUR, problems)
        if fee is not None and fee != fee.quantize(_CENT):
            problems.append(
                f"monthly_fee_eur: {_show(data['monthly_fee_eur'])} is finer than a cent"
            )
            fee = None
    if "gtr_hours" in data:
        hours = _number(data["gtr_hours"], "gtr_hours", MAX_GTR_HOURS, problems, positive=True)
        if hours is not None and (hours * 3600) % 1:
            problems.append(
                f"gtr_hours: {_show(data['gtr_hours'])} is not a whole number of seconds"
            )
        elif hours is not None:
            gtr = timedelta(seconds=int(hours * 3600))
    incidents: list[Incident] = []
    raw = data.get("incidents")
    if "incidents" in data and not isinstance(raw, list):
        problems.append(f"incidents: expected a list (write [] for none), {_got(raw)}")
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            incident = _incident(item, f"incidents[{index}]", problems)
            if incident is not None:
                incidents.append(incident)
    if problems or month is None or fee is None or gtr is None:
        raise SlaInputError(problems or ["the file is not a valid incidents file"])
    return MonthInput(month, fee, gtr, tuple(incidents))


def _keys(
    data: Mapping[object, object], prefix: str, known: tuple[str, ...], required: tuple[str, ...]
) -> list[str]:
    problems = []
    for key in data:
        if not isinstance(key, str):
            problems.append(
                f"{prefix.rstrip('.') or 'the file'}: key {_show(key)} is not a field name"
            )
        elif key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {_list(known)})"
            problems.append(f"{prefix}{key}: unknown key{hint}")
    problems += [f"{prefix}{key}: required" for key in required if key not in data]
    return problems


def _month(value: object, problems: list[str]) -> Month | None:
    match = _MONTH.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        hint = "; quote it" if isinstance(value, date | int | float) else ""
        problems.append(f"month: {_show(value)} is not a month written YYYY-MM{hint}")
        return None
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        problems.append(f"month: {_show(value)} is not a month (01 to 12)")
        return None
    if not MIN_YEAR <= year <= MAX_YEAR:
        problems.append(f"month: {_show(value)} is outside the years {MIN_YEAR} to {MAX_YEAR}")
        return None
    return Month(year, month)


def _number(
    value: object, field: str, limit: Decimal, problems: list[str], *, positive: bool = False
) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{field}: expected a number, {_got(value)}")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{field}: {_show(value)} is not a finite number")
        return None
    number = Decimal(str(value))  # 250.1 is 250.1, not its binary neighbour
    if number < 0 or (positive and number == 0):
        problems.append(
            f"{field}: {_show(value)} must be {'more than' if positive else 'at least'} 0"
        )
        return None
    if number > limit:
        problems.append(f"{field}: {_show(value)} is more than {limit}")
        return None
    return number


def _incident(item: object, name: str, problems: list[str]) -> Incident | None:
    if not isinstance(item, Mapping):
        problems.append(
            f"{name}: expected a mapping with {_list(_INCIDENT_REQUIRED)}, {_got(item)}"
        )
        return None
    before = len(problems)
    problems += _keys(item, f"{name}.", _INCIDENT_KEYS, _INCIDENT_REQUIRED)
    times = {
        key: _moment(item[key], f"{name}.{key}", problems)
        for key in ("start", "end", "ticket_opened", "announced")
        if key in item
    }
    cause = item.get("cause")
    if "cause" in item and cause not in CAUSES:
        problems.append(f"{name}.cause: {_show(cause)} is not one of {', '.join(CAUSES)}")
    if "announced" in item and cause in CAUSES and cause != "planned":
        problems.append(
            f"{name}.announced: only a planned interruption is announced, this one is {cause!r}"
        )
    start, end = times.get("start"), times.get("end")
    if start is not None and end is not None and end < start:
        problems.append(f"{name}.end: {_show(item['end'])} is before start {_show(item['start'])}")
    opened = times.get("ticket_opened")
    if opened is not None and end is not None and opened > end:  # a negative restoration
        problems.append(
            f"{name}.ticket_opened: {_show(item['ticket_opened'])} is after end "
            f"{_show(item['end'])} (the service was restored before the ticket)"
        )
    if len(problems) > before or start is None or end is None or cause not in CAUSES:
        return None
    return Incident(start, end, cause, times.get("ticket_opened"), times.get("announced"))


def _moment(value: object, field: str, problems: list[str]) -> datetime | None:
    """An aware datetime, in UTC, from text or a YAML timestamp; None after a problem."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            problems.append(
                f"{field}: {_show(value)} is not an ISO 8601 date and time "
                "(like 2027-04-06T10:00:00+02:00)"
            )
            return None
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        problems.append(f"{field}: {_show(value)} is a date without a time and UTC offset")
        return None
    else:
        problems.append(f"{field}: expected a date and time with a UTC offset, {_got(value)}")
        return None
    if moment.utcoffset() is None:
        problems.append(f"{field}: {_show(value)} has no UTC offset: add one (+02:00, Z, ...)")
        return None
    if moment.microsecond:
        problems.append(f"{field}: {_show(value)} has fractions of a second: write whole seconds")
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        problems.append(f"{field}: {_show(value)} is out of range")
        return None


# -- Describing values in messages ------------------------------------------------------------


def _list(names: Iterable[str]) -> str:
    return ", ".join(names)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"


def _got(value: object) -> str:
    kinds = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "text"))
    if value is None:
        return "got null"
    if isinstance(value, list):
        return "got a list"
    if isinstance(value, Mapping):
        return "got a mapping"
    if isinstance(value, datetime):
        return f"got the timestamp {value.isoformat()}"
    if isinstance(value, date):
        return f"got the date {value.isoformat()}"
    for kind, name in kinds:
        if isinstance(value, kind):
            return f"got {name} {_show(value)}"
    return f"got {_show(value)}"
