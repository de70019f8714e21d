"""Service levels (§5): the rules of plugins/module_utils/sla.py and ``hostops sla compute``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hostops.cli import main
from hostops.module_utils.sla import (
    Incident,
    Month,
    MonthInput,
    MonthResult,
    SlaInputError,
    attribute,
    compute,
    gtr_share,
    read_month,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sla" / "2027-04.yml"
APRIL = "2027-04-01T00:00:00+02:00"  # the start of April 2027 in Paris, for offsets below
H = 3600


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def after(base: str, seconds: float) -> str:
    return (datetime.fromisoformat(base) + timedelta(seconds=seconds)).isoformat()


def inc(
    start: str,
    end: str,
    cause: str = "provider",
    ticket: str | None = None,
    announced: str | None = None,
) -> Incident:
    return Incident(
        at(start),
        at(end),
        cause,  # type: ignore[arg-type]
        at(ticket) if ticket else None,
        at(announced) if announced else None,
    )


def month_of(
    incidents: list[Incident], month: str = "2027-04", fee: str = "250", gtr_hours: int = 4
) -> MonthResult:
    year, number = (int(part) for part in month.split("-"))
    month_ = Month(year, number)
    return compute(MonthInput(month_, Decimal(fee), timedelta(hours=gtr_hours), tuple(incidents)))


def outage(start: str, seconds: float, cause: str = "provider") -> Incident:
    return inc(start, after(start, seconds), cause)


# -- Month lengths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "hours"),
    [
        ("2027-02", 672),  # 28 days
        ("2028-02", 696),  # 29 days, leap year
        ("2027-04", 720),  # 30 days
        ("2027-01", 744),  # 31 days
        ("2027-03", 743),  # 31 days, Paris moves to summer time: an hour shorter
        ("2027-10", 745),  # 31 days, back to winter time: an hour longer
        ("2027-12", 744),  # the year changes at its end
    ],
)
def test_month_has_its_real_length_in_paris(month: str, hours: int) -> None:
    year, number = (int(part) for part in month.split("-"))
    assert Month(year, number).length == timedelta(hours=hours)


# -- Availability: the boundary tables ------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "down_s", "met", "percent"),
    [
        ("2027-04", 0, True, "100.000000"),  # a month without incidents
        # 99.9% of a 30-day month is 43 min 12 s of outage: exactly that meets the target.
        ("2027-04", 2592, True, "99.900000"),
        ("2027-04", 2593, False, "99.899961"),
        # The allowance is 0.1% of the month's real length, whatever it is.
        ("2027-02", 2419, True, "99.900008"),  # 28 days: 2419.2 s
        ("2027-02", 2420, False, "99.899966"),
        ("2028-02", 2505, True, "99.900023"),  # 29 days: 2505.6 s
        ("2028-02", 2506, False, "99.899984"),
        ("2027-01", 2678, True, "99.900014"),  # 31 days: 2678.4 s
        ("2027-01", 2679, False, "99.899977"),
        ("2027-03", 2674, True, "99.900029"),  # 743 h (summer time starts): 2674.8 s
        ("2027-03", 2675, False, "99.899992"),
        ("2027-10", 2682, True, "99.900000"),  # 745 h (winter time is back): 2682 s
        ("2027-10", 2683, False, "99.899962"),
    ],
)
def test_target_is_met_up_to_a_thousandth_of_the_real_month(
    month: str, down_s: int, met: bool, percent: str
) -> None:
    start = f"{month}-10T10:00:00+00:00"
    result = month_of([outage(start, down_s)] if down_s else [], month)
    assert result.provider_time == timedelta(seconds=down_s)
    assert result.target_met is met
    assert str(result.availability_percent) == percent
    assert result.total_credit_eur == Decimal("0.00")  # under an hour: no credit either way


D = "2027-04-06T"  # a day in April, for the incidents below (Paris summer time: +02:00)
CLIENT_HOUR = outage(f"{D}10:00:00+02:00", H, "client")
MARCH_TO_MAY = ("2027-03-01T00:00:00+01:00", "2027-06-01T00:00:00+02:00")


@pytest.mark.parametrize(
    ("month", "incidents", "provider_s", "client_s", "met"),
    [
        # An outage across the spring-forward hour lasts its real time: 01:30 to 03:30 is 1 h.
        ("2027-03", [inc("2027-03-28T01:30:00+01:00", "2027-03-28T03:30:00+02:00")], H, 0, False),
        # Clipping: only the part inside the month counts, at either end.
        ("2027-04", [inc("2027-03-31T23:30:00+02:00", APRIL)], 0, 0, True),
        ("2027-04", [inc("2027-03-31T23:30:00+02:00", "2027-04-01T00:30:00+02:00")], 1800, 0, True),
        ("2027-04", [inc("2027-04-30T23:40:00+02:00", "2027-05-01T02:00:00+02:00")], 1200, 0, True),
        ("2027-04", [inc("2027-03-20T00:00:00+01:00", "2027-03-21T00:00:00+01:00")], 0, 0, True),
        ("2027-04", [inc(*MARCH_TO_MAY)], 720 * H, 0, False),
        # Overlapping intervals of one cause count once.
        (
            "2027-04",
            [
                inc(f"{D}10:00:00+02:00", f"{D}11:00:00+02:00"),
                inc(f"{D}10:30:00+02:00", f"{D}11:30:00+02:00"),
                inc(f"{D}10:40:00+02:00", f"{D}10:50:00+02:00"),
            ],
            5400,
            0,
            False,
        ),
        ("2027-04", [outage(APRIL, 1800), outage(APRIL, 1800)], 1800, 0, True),
        # Client time leaves the denominator: met while 1000 x provider <= month - client.
        ("2027-04", [CLIENT_HOUR, outage(APRIL, 2588)], 2588, H, True),
        ("2027-04", [CLIENT_HOUR, outage(APRIL, 2589)], 2589, H, False),
        # The client's whole month: nothing is the provider's, 100%.
        ("2027-04", [inc(*MARCH_TO_MAY, "client")], 0, 720 * H, True),
    ],
)
def test_clipping_overlaps_and_client_time(
    month: str, incidents: list[Incident], provider_s: int, client_s: int, met: bool
) -> None:
    result = month_of(incidents, month)
    assert result.provider_time == timedelta(seconds=provider_s)
    assert result.client_time == timedelta(seconds=client_s)
    assert result.target_met is met
    if not provider_s:
        assert result.availability_percent == Decimal(100)


# -- Overlaps between causes: client, then excluded planned, then provider ----------------------


ANNOUNCED = "2027-03-20T09:00:00+01:00"  # more than 192 h before anything in April


def on6(hour: int) -> str:
    """``hour``:00 on 6 April 2027, Paris time."""
    return f"2027-04-06T{hour:02d}:00:00+02:00"


def planned(start: int, end: int) -> Incident:
    return inc(on6(start), on6(end), "planned", announced=ANNOUNCED)


@pytest.mark.parametrize(
    ("incidents", "client_s", "planned_s", "provider_s"),
    [
        # The client wins the overlap with the provider.
        ([inc(on6(10), on6(12)), inc(on6(11), on6(13), "client")], 2 * H, 0, H),
        ([inc(on6(10), on6(14), "client"), inc(on6(11), on6(12))], 4 * H, 0, 0),
        # An announced planned interruption wins over the provider.
        ([inc(on6(10), on6(12)), planned(11, 13)], 0, 2 * H, H),
        # The client wins over an announced planned interruption.
        ([inc(on6(10), on6(12), "client"), planned(11, 13)], 2 * H, H, 0),
        ([planned(10, 14), inc(on6(11), on6(12), "client")], H, 3 * H, 0),
        # An unannounced planned interruption is the provider's: the overlap counts once.
        ([inc(on6(10), on6(11)), inc(on6(10), on6(12), "planned")], 0, 0, 2 * H),
        # All three: 10-11 provider, 11-12 planned, 12-13 client, 13-14 planned, 14-15 provider.
        (
            [inc(on6(10), on6(15)), planned(11, 14), inc(on6(12), on6(13), "client")],
            H,
            2 * H,
            2 * H,
        ),
    ],
)
def test_overlapping_causes_each_instant_counted_once(
    incidents: list[Incident], client_s: int, planned_s: int, provider_s: int
) -> None:
    result = month_of(incidents)
    assert result.client_time == timedelta(seconds=client_s)
    assert result.excluded_planned_time == timedelta(seconds=planned_s)
    assert result.provider_time == timedelta(seconds=provider_s)
    length = 720 * H
    expected = Decimal(100 * (length - client_s - provider_s)) / Decimal(length - client_s)
    assert abs(result.availability_percent - expected) < Decimal("0.000001")


def test_attribute_sweeps_half_open_intervals() -> None:
    one = at("2027-04-06T10:00:00+02:00")
    two, three = one + timedelta(hours=1), one + timedelta(hours=2)
    times = attribute([(one, two, "provider"), (two, three, "client"), (three, three, "client")])
    assert times == {
        "client": timedelta(hours=1),
        "excluded_planned": timedelta(0),
        "provider": timedelta(hours=1),
    }


# -- The 8-day announcement rule (§5.5) -----------------------------------------------------


START = "2027-04-14T07:00:00+02:00"


@pytest.mark.parametrize(
    ("announced", "excluded", "note"),
    [
        pytest.param(after(START, -192 * H), True, None, id="exactly 192 h"),
        pytest.param(after(START, -192 * H - 1), True, None, id="192 h + 1 s"),
        pytest.param(
            after(START, -192 * H + 1),
            False,
            "announced 191 h 59 min 59 s before its start",
            id="192 h - 1 s",
        ),
        pytest.param(None, False, "planned, without 'announced'", id="never announced"),
        pytest.param(after(START, 60), False, "announced after its start", id="announced late"),
    ],
)
def test_planned_is_excluded_only_when_announced_192_hours_before(
    announced: str | None, excluded: bool, note: str | None
) -> None:
    result = month_of([inc(START, after(START, 1800), "planned", announced=announced)])
    assert result.excluded_planned_time == timedelta(seconds=1800 if excluded else 0)
    assert result.provider_time == timedelta(seconds=0 if excluded else 1800)
    if note is None:
        assert result.notes == ()
    else:
        assert len(result.notes) == 1
        assert note in result.notes[0]
        assert "counted as the provider's" in result.notes[0]


def test_192_hours_are_real_hours_across_the_dst_change() -> None:
    # 2027-03-24 08:00 CET to 2027-04-01 09:00 CEST is 8 wall-clock days and 1 h, 192 real hours.
    start = "2027-04-01T09:00:00+02:00"
    result = month_of(
        [inc(start, after(start, 600), "planned", announced="2027-03-24T08:00:00+01:00")]
    )
    assert result.excluded_planned_time == timedelta(seconds=600)
    result = month_of(
        [inc(start, after(start, 600), "planned", announced="2027-03-24T08:00:01+01:00")]
    )
    assert result.provider_time == timedelta(seconds=600)


# -- GTR -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrun_s", "share"),
    [
        (-1, "0"),
        (0, "0"),
        (1, "0.20"),
        (H, "0.20"),
        (H + 1, "0.30"),
        (2 * H, "0.30"),
        (2 * H + 1, "0.40"),
        (3 * H, "0.40"),
        (3 * H + 1, "0.50"),
        (100 * H, "0.50"),
    ],
)
def test_gtr_thresholds(overrun_s: int, share: str) -> None:
    assert gtr_share(timedelta(seconds=overrun_s)) == Decimal(share)
    # The same through a month: GTR 4 h, ticket at the start, restored 4 h + overrun later.
    start = "2027-04-06T10:00:00+02:00"
    incident = inc(start, after(start, 4 * H + overrun_s), ticket=start)
    result = month_of([incident], fee="250")
    assert result.gtr_credit_eur == (Decimal(250) * Decimal(share)).quantize(Decimal("0.01"))
    assert result.gtr_credits[0].overrun == timedelta(seconds=overrun_s)


def test_gtr_counts_from_the_ticket_not_the_start() -> None:
    # Down at 10:00, ticket at 12:00, back at 16:00: restored in 4 h, within the GTR.
    result = month_of(
        [
            inc(
                "2027-04-06T10:00:00+02:00",
                "2027-04-06T16:00:00+02:00",
                ticket="2027-04-06T12:00:00+02:00",
            )
        ]
    )
    assert result.gtr_credits[0].restoration == timedelta(hours=4)
    assert result.gtr_credit_eur == Decimal("0.00")


@pytest.mark.parametrize(
    ("cause", "announced", "credited"),
    [
        ("provider", None, True),
        ("client", None, False),
        ("planned", ANNOUNCED, False),  # excluded planned
        ("planned", None, True),  # counted as the provider's, so its GTR counts too
    ],
)
def test_gtr_only_for_the_providers_incidents(
    cause: str, announced: str | None, credited: bool
) -> None:
    start = "2027-04-06T10:00:00+02:00"
    result = month_of([inc(start, after(start, 9 * H), cause, ticket=start, announced=announced)])
    assert result.gtr_credit_eur == (Decimal("125.00") if credited else Decimal("0.00"))


def test_gtr_without_ticket_or_ticket_after_restoration_earns_nothing() -> None:
    start, end = "2027-04-06T10:00:00+02:00", "2027-04-06T20:00:00+02:00"
    result = month_of([inc(start, end), inc(start, end, ticket=after(end, 60))])
    assert [credit.share for credit in result.gtr_credits] == [Decimal(0)]
    assert result.gtr_credit_eur == Decimal("0.00")


def test_gtr_reads_each_incident_on_its_own_whatever_overlaps_it() -> None:
    # Two provider incidents overlapping, each with its ticket, and a client incident over
    # both: no provider time is left, but each restoration was late (the docs say why).
    first = inc(on6(0), on6(6), ticket=on6(0))  # 6 h: overrun 2 h, 30%
    second = inc(on6(1), on6(9), ticket=on6(1))  # 8 h: overrun 4 h, 50%
    result = month_of([first, second, inc(on6(0), on6(10), "client")])
    assert result.provider_time == timedelta(0)
    assert [credit.share for credit in result.gtr_credits] == [Decimal("0.30"), Decimal("0.50")]
    assert result.gtr_credit_eur == Decimal("200.00")


def test_gtr_belongs_to_the_month_the_incident_started_in() -> None:
    start = "2027-03-31T20:00:00+02:00"
    incident = inc(start, after(start, 9 * H), ticket=start)  # overrun 5 h: 50%
    april, march = month_of([incident], "2027-04"), month_of([incident], "2027-03")
    assert april.gtr_credit_eur == Decimal("0.00")
    assert any("its GTR credit belongs to the month it started in" in n for n in april.notes)
    assert march.gtr_credit_eur == Decimal("125.00")
    assert april.provider_time + march.provider_time == timedelta(hours=9)


# -- Credits and caps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_s", "credit"),
    [
        (H - 1, "0.00"),  # target missed, but no complete hour
        (H, "6.25"),
        (2 * H - 1, "6.25"),  # complete hours only
        (2 * H, "12.50"),
        (39 * H, "243.75"),
        (40 * H, "250.00"),  # 40 x 2.5% = the whole fee
        (41 * H, "250.00"),  # capped at the fee
        (720 * H, "250.00"),
    ],
)
def test_availability_credit_per_complete_hour_capped(provider_s: int, credit: str) -> None:
    result = month_of([outage(APRIL, provider_s)], fee="250")
    assert result.target_met is False
    assert result.availability_credit_eur == Decimal(credit)


def test_gtr_credits_are_capped_at_the_fee_and_the_caps_are_separate() -> None:
    # Three 50% GTR overruns (150%) and 45 hours down (112.5%): each credit is capped at
    # the fee, the total is their sum.
    days = ("2027-04-06", "2027-04-13", "2027-04-20")
    incidents = [
        inc(f"{day}T00:00:00+02:00", f"{day}T15:00:00+02:00", ticket=f"{day}T00:00:00+02:00")
        for day in days
    ]
    result = month_of(incidents, fee="250")
    assert result.provider_time == timedelta(hours=45)
    assert result.availability_credit_eur == Decimal("250.00")
    assert result.gtr_credit_eur == Decimal("250.00")
    assert result.total_credit_eur == Decimal("500.00")


def test_money_is_rounded_half_up_to_the_cent() -> None:
    result = month_of([outage(APRIL, H)], fee="99.99")  # 2.5% of 99.99 = 2.49975
    assert result.availability_credit_eur == Decimal("2.50")


def test_worked_example_of_the_docs() -> None:
    assert main_result(EXAMPLE) == {
        "availability_percent": Decimal("99.119146"),
        "target_met": False,
        "unavailable_seconds": 22800,
        "availability_penalty_eur": Decimal("37.50"),
        "gtr_penalty_eur": Decimal("100.00"),
        "total_credit_eur": Decimal("137.50"),
    }


def main_result(path: Path) -> dict[str, object]:
    completed = run_cli("sla", "compute", str(path), "--json")
    assert completed.returncode == 0, completed.stderr
    data: dict[str, object] = json.loads(completed.stdout, parse_float=Decimal)
    return data


# -- Reading the file ----------------------------------------------------------------------------


def test_quoted_and_unquoted_timestamps_read_the_same() -> None:
    quoted = {"start": "2027-04-06T10:00:00+02:00", "end": "2027-04-06T11:00:00Z"}
    unquoted = {"start": at(quoted["start"]), "end": at(quoted["end"])}
    base = {"month": "2027-04", "monthly_fee_eur": 250, "gtr_hours": 4}
    one, two = (
        read_month({**base, "incidents": [{**times, "cause": "provider"}]})
        for times in (quoted, unquoted)
    )
    assert one == two
    assert one.incidents[0].end - one.incidents[0].start == timedelta(hours=3)


def test_read_month_lists_every_problem() -> None:
    with pytest.raises(SlaInputError) as error:
        read_month({"month": "2027-4", "incidents": [{"cause": "foo"}]})
    assert error.value.problems == [
        "monthly_fee_eur: required",
        "gtr_hours: required",
        "month: '2027-4' is not a month written YYYY-MM",
        "incidents[0].start: required",
        "incidents[0].end: required",
        "incidents[0].cause: 'foo' is not one of provider, client, planned",
    ]


# -- The command -----------------------------------------------------------------------------------

GOOD = """\
month: 2027-04
monthly_fee_eur: 250
gtr_hours: 4
incidents:
  - start: 2027-04-06T10:00:00+02:00
    end: 2027-04-06T11:30:00+02:00
    cause: provider
    ticket_opened: 2027-04-06T10:05:00+02:00
"""
INCIDENT = "  - start: 2027-04-06T10:00:00+02:00\n    end: 2027-04-06T11:30:00+02:00\n"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hostops.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_json_has_exactly_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "april.yml"
    path.write_text(GOOD)
    assert main(["sla", "compute", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out, parse_float=Decimal)
    assert list(data) == [
        "availability_percent",
        "target_met",
        "unavailable_seconds",
        "availability_penalty_eur",
        "gtr_penalty_eur",
        "total_credit_eur",
    ]
    assert data == {
        "availability_percent": Decimal("99.791666"),
        "target_met": False,
        "unavailable_seconds": 5400,
        "availability_penalty_eur": Decimal("6.25"),
        "gtr_penalty_eur": Decimal("0.00"),
        "total_credit_eur": Decimal("6.25"),
    }
    assert re.search(r'"availability_percent": \d+\.\d{4,}[,}]', out)
    for key in ("availability_penalty_eur", "gtr_penalty_eur", "total_credit_eur"):
        assert re.search(rf'"{key}": \d+\.\d\d[,}}]', out)


def test_json_of_a_quiet_month(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "april.yml"
    path.write_text("month: '2027-04'\nmonthly_fee_eur: 250.5\ngtr_hours: 4\nincidents: []\n")
    assert main(["sla", "compute", str(path), "--json"]) == 0
    assert capsys.readouterr().out == (
        '{"availability_percent": 100.000000, "target_met": true, "unavailable_seconds": 0, '
        '"availability_penalty_eur": 0.00, "gtr_penalty_eur": 0.00, "total_credit_eur": 0.00}\n'
    )


def test_json_notes_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "april.yml"
    path.write_text(GOOD.replace("cause: provider", "cause: planned"))
    assert main(["sla", "compute", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert captured.err == (
        "hostops: note: incidents[0]: planned, without 'announced': counted as the "
        "provider's (§5.5)\n"
    )


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sla", "compute", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    for line in (
        "month                          2027-04 (Europe/Paris, 720 h)",
        "provider unavailability        6 h 20 min (22800 s)",
        "client-caused (excluded)       1 h (3600 s)",
        "planned, announced (excluded)  30 min (1800 s)",
        "availability                   99.119146 % (target 99.9 %: MISSED)",
        "availability credit            37.50 EUR (2.5 % x 6 complete hour(s) of 250.00 EUR)",
        "total credit                   137.50 EUR",
        "  incidents[0]  restored in 6 h 15 min, overrun 2 h 15 min: 40 % of the fee",
        "  incidents[3]: planned, announced 168 h before its start (192 h needed): "
        "counted as the provider's (§5.5)",
    ):
        assert line in out.splitlines()


def replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            replace("cause: provider", "cause: foo"),
            "incidents[0].cause: 'foo' is not one of provider, client, planned",
            id="unknown cause",
        ),
        pytest.param(
            replace("end: 2027-04-06T11:30:00+02:00", "end: 2027-04-06T09:30:00+02:00"),
            "incidents[0].end: 2027-04-06T09:30:00+02:00 is before start 2027-04-06T10:00:00+02:00",
            id="end before start",
        ),
        pytest.param(
            replace("start: 2027-04-06T10:00:00+02:00", "start: '2027-04-06T10:00:00'"),
            "incidents[0].start: '2027-04-06T10:00:00' has no UTC offset: add one (+02:00, Z, ...)",
            id="text without offset",
        ),
        pytest.param(
            replace("start: 2027-04-06T10:00:00+02:00", "start: 2027-04-06T10:00:00"),
            "incidents[0].start: 2027-04-06T10:00:00 has no UTC offset: add one (+02:00, Z, ...)",
            id="YAML timestamp without offset",
        ),
        pytest.param(
            replace("ticket_opened: 2027-04-06T10:05:00+02:00", "ticket_opened: 2027-04-06"),
            "incidents[0].ticket_opened: 2027-04-06 is a date without a time and UTC offset",
            id="a date only",
        ),
        pytest.param(
            replace("start: 2027-04-06T10:00:00+02:00", "start: 'yesterday'"),
            "incidents[0].start: 'yesterday' is not an ISO 8601 date and time "
            "(like 2027-04-06T10:00:00+02:00)",
            id="not a time",
        ),
        pytest.param(
            replace("start: 2027-04-06T10:00:00+02:00", "start: 2027-04-06T10:00:00.5+02:00"),
            "incidents[0].start: 2027-04-06T10:00:00.500000+02:00 has fractions of a second: "
            "write whole seconds",
            id="fractions of a second",
        ),
        pytest.param(
            replace("    end: 2027-04-06T11:30:00+02:00\n", ""),
            "incidents[0].end: required",
            id="missing end",
        ),
        pytest.param(replace("gtr_hours: 4\n", ""), "gtr_hours: required", id="missing gtr_hours"),
        pytest.param(
            replace("ticket_opened:", "ticket_opend:"),
            "incidents[0].ticket_opend: unknown key (did you mean 'ticket_opened'?)",
            id="unknown incident key",
        ),
        pytest.param(
            GOOD + "customer: acme\n",
            "customer: unknown key (known: month, monthly_fee_eur, gtr_hours, incidents)",
            id="unknown top-level key",
        ),
        pytest.param(
            replace("month: 2027-04", "month: 2027-13"),
            "month: '2027-13' is not a month (01 to 12)",
            id="month 13",
        ),
        pytest.param(
            replace("month: 2027-04", "month: 2027-04-01"),
            "month: 2027-04-01 is not a month written YYYY-MM; quote it",
            id="month as a date",
        ),
        pytest.param(
            replace("month: 2027-04", "month: April"),
            "month: 'April' is not a month written YYYY-MM",
            id="month in words",
        ),
        pytest.param(
            replace("monthly_fee_eur: 250", "monthly_fee_eur: -250"),
            "monthly_fee_eur: -250 must be at least 0",
            id="negative fee",
        ),
        pytest.param(
            replace("monthly_fee_eur: 250", "monthly_fee_eur: '250'"),
            "monthly_fee_eur: expected a number, got text '250'",
            id="fee as text",
        ),
        pytest.param(
            replace("monthly_fee_eur: 250", "monthly_fee_eur: 250.001"),
            "monthly_fee_eur: 250.001 is finer than a cent",
            id="fee finer than a cent",
        ),
        pytest.param(
            replace("monthly_fee_eur: 250", "monthly_fee_eur: .nan"),
            "monthly_fee_eur: nan is not a finite number",
            id="fee NaN",
        ),
        pytest.param(
            replace("monthly_fee_eur: 250", "monthly_fee_eur: true"),
            "monthly_fee_eur: expected a number, got boolean true",
            id="fee boolean",
        ),
        pytest.param(
            replace("gtr_hours: 4", "gtr_hours: -4"),
            "gtr_hours: -4 must be more than 0",
            id="negative gtr",
        ),
        pytest.param(
            replace("gtr_hours: 4", "gtr_hours: 0"), "gtr_hours: 0 must be more than 0", id="gtr 0"
        ),
        pytest.param(
            replace("gtr_hours: 4", "gtr_hours: four"),
            "gtr_hours: expected a number, got text 'four'",
            id="gtr as text",
        ),
        pytest.param(
            replace("cause: provider", "cause: provider\n    announced: 2027-03-01T09:00:00Z"),
            "incidents[0].announced: only a planned interruption is announced, this one is "
            "'provider'",
            id="announced on a provider incident",
        ),
        pytest.param(
            "month: 2027-04\nmonthly_fee_eur: 250\ngtr_hours: 4\nincidents:\n",
            "incidents: expected a list (write [] for none), got null",
            id="incidents null",
        ),
        pytest.param(
            "month: 2027-04\nmonthly_fee_eur: 250\ngtr_hours: 4\nincidents: [1]\n",
            "incidents[0]: expected a mapping with start, end, cause, got integer 1",
            id="incident not a mapping",
        ),
        pytest.param(
            "- 1\n- 2\n",
            "the file must be a mapping with month, monthly_fee_eur, gtr_hours, incidents, "
            "got a list",
            id="a list",
        ),
        pytest.param("", "{path}: the file is empty", id="empty"),
        pytest.param(
            GOOD + "  - [\n", "{path}: YAML syntax error at line 10, column 1:", id="bad YAML"
        ),
        pytest.param(
            replace("gtr_hours: 4", "gtr_hours: 4\ngtr_hours: 5"),
            "{path}: line 4: duplicate key 'gtr_hours'",
            id="duplicate key",
        ),
        pytest.param(
            GOOD.replace(INCIDENT, "  - &a\n    start: 2027-04-06T10:00:00+02:00\n").replace(
                "ticket_opened: 2027-04-06T10:05:00+02:00\n", "ticket_opened: x\n"
            )
            + "  - *a\n",
            "{path}: YAML anchors and aliases (&name, *name) are not allowed in a month of "
            "incidents; write the value out (the anchor is at line 5)",
            id="alias",
        ),
        pytest.param(
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
            "{path}: YAML anchors and aliases (&name, *name) are not allowed in a month of "
            "incidents; write the value out (the anchor is at line 1)",
            id="billion laughs",
        ),
        pytest.param(
            "base: &base {cause: provider}\nincidents:\n  - <<: *base\n",
            "{path}: line 3: merge keys (<<) are not allowed in a month of incidents; write the "
            "fields out",
            id="merge key",
        ),
        pytest.param(
            "month: !!python/object:os.system 2027-04\n",
            "{path}: line 1: YAML tag !!python/object:os.system is not allowed in a month of "
            "incidents",
            id="python tag",
        ),
        pytest.param(
            "month: 2027-04\nmonthly_fee_eur: " + "9" * 5000 + "\n",
            "{path}: cannot read this YAML:",
            id="huge integer",
        ),
        pytest.param(
            "x" * (256 * 1024 + 1),
            "{path}: 262145 bytes is too big for a month of incidents (the limit is 262144 bytes)",
            id="too big",
        ),
    ],
)
def test_bad_files_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "april.yml"
    path.write_text(text)
    assert main(["sla", "compute", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert all(line.startswith("hostops: ") for line in lines)
    assert any(message.format(path=path) in line for line in lines), captured.err


def test_every_problem_on_its_own_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "april.yml"
    path.write_text(
        GOOD.replace("cause: provider", "cause: foo").replace(
            "monthly_fee_eur: 250", "monthly_fee_eur: -1"
        )
    )
    assert main(["sla", "compute", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "hostops: monthly_fee_eur: -1 must be at least 0",
        "hostops: incidents[0].cause: 'foo' is not one of provider, client, planned",
    ]


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "april.yml"
    path.write_bytes(GOOD.encode() + b"# \xff\n")
    assert main(["sla", "compute", str(path)]) == 2
    assert "not UTF-8 text: byte 0xff at line 9" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.yml", "cannot read the incidents file: No such file or directory"),
        (".", "cannot read the incidents file: a directory, not a regular file"),
    ],
)
def test_not_a_readable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    assert main(["sla", "compute", str(tmp_path / name)]) == 2
    assert message in capsys.readouterr().err


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "incidents.yml"
    os.mkfifo(fifo)
    completed = run_cli("sla", "compute", str(fifo), "--json")  # times out if it blocks
    assert completed.returncode == 2
    assert (
        completed.stderr
        == f"hostops: {fifo}: cannot read the incidents file: a FIFO, not a regular file\n"
    )
    assert completed.stdout == ""


def test_no_traceback_on_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "april.yml"
    path.write_text("month: [\n")
    completed = run_cli("sla", "compute", str(path))
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
