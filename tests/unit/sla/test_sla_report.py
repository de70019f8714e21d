"""``hostops sla report``: incidents from Prometheus's answers, merging, month clipping, the
files written, and the options refused before Prometheus is asked (exit 2).

The Prometheus answers below have the API's real shape (``/api/v1/query_range``: a
matrix of series, each ``values`` a list of ``[unix time, "value"]``; the configuration
``/api/v1/status/config`` answers as YAML text). The lab test
(tests/integration/test_order_monitoring.py) asks a real Prometheus.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
import yaml

from hostops import cli
from hostops.module_utils.sla import Incident, Month, MonthInput, compute
from hostops.orders import fleet, provision
from hostops.orders.order import load_order
from hostops.sla.document import ServerReport, plot, render_markdown
from hostops.sla.report import (
    Announcement,
    alert_counts,
    clip,
    down_spans,
    order_incidents,
    parse_duration,
    probe_query,
    read_announcements,
    sample_states,
    scrape_interval,
    server_incidents,
    union,
)

STEP = timedelta(seconds=30)
T0 = 1_796_079_600  # 2026-12-01T00:00:00+01:00, the start of December 2026 in Paris
SERVER = "app1.vidal.example"
DECEMBER = Month(2026, 12)


def utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def series(job: str, values: list[tuple[float, str]]) -> dict[str, object]:
    """One series of a query_range matrix, as Prometheus answers it."""
    return {
        "metric": {
            "__name__": "probe_success",
            "instance": "203.0.113.7",
            "job": job,
            "server": SERVER,
            "order": "BDC-2027-0193",
        },
        "values": [[stamp, value] for stamp, value in values],
    }


def samples(pattern: str, start: float = T0, step: float = 30) -> list[tuple[float, str]]:
    """'1100.1': one sample per character, '.' for none (no data at that time)."""
    return [(start + i * step, c) for i, c in enumerate(pattern) if c != "."]


def test_the_month_start_constant_is_paris_midnight() -> None:
    assert utc(T0) == DECEMBER.start


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5s", 5), ("1m", 60), ("1m30s", 90), ("2h", 7200), ("1d", 86400),
     ("500ms", 0.5)],
)  # fmt: skip
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "1x", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(text)


def test_scrape_interval_from_the_configuration() -> None:
    # the text /api/v1/status/config answers (its 'yaml'), as Prometheus 2.53 writes it
    config = (
        "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\n  evaluation_interval: 30s\n"
        "scrape_configs:\n- job_name: hostops-icmp\n  metrics_path: /probe\n"
        "- job_name: hostops-http\n  scrape_interval: 15s\n- job_name: hostops-node\n"
        "  scrape_interval: 5s\n"
    )
    assert scrape_interval(config) == timedelta(seconds=15)  # the probes' shortest
    assert scrape_interval("global: {}\nscrape_configs: []\n") == timedelta(minutes=1)


def test_one_run_of_failures_is_one_interval_of_whole_steps() -> None:
    states = sample_states([series("hostops-icmp", samples("1110001"))])
    # failed at T0+90, +120, +150; up again at +180: down from +90 to +180
    assert down_spans(states, STEP) == [(utc(T0 + 90), utc(T0 + 180))]


def test_a_failure_of_any_probe_is_the_servers() -> None:
    result = [
        series("hostops-icmp", samples("1111111")),
        series("hostops-http", samples("1001110")),
    ]
    assert down_spans(sample_states(result), STEP) == [
        (utc(T0 + 30), utc(T0 + 90)),
        (utc(T0 + 180), utc(T0 + 210)),  # still down at the last sample: one step more
    ]


def test_no_data_is_not_down_and_ends_a_run() -> None:
    states = sample_states([series("hostops-icmp", samples("100..00111....1"))])
    assert down_spans(states, STEP) == [
        (utc(T0 + 30), utc(T0 + 90)),
        (utc(T0 + 150), utc(T0 + 210)),
    ]
    assert down_spans(sample_states([]), STEP) == []
    assert down_spans(sample_states([series("hostops-icmp", samples("1111"))]), STEP) == []


def test_timestamps_with_fractions_and_values_as_text() -> None:
    # Prometheus writes times as numbers with decimals, values as strings ("0", "1")
    states = sample_states([series("hostops-icmp", samples("1001", start=T0 + 0.25))])
    assert down_spans(states, STEP) == [(utc(T0 + 30.25), utc(T0 + 90.25))]


def test_clipping_to_the_month_and_union() -> None:
    before = (DECEMBER.start - timedelta(hours=1), DECEMBER.start + timedelta(minutes=10))
    after = (DECEMBER.end - timedelta(minutes=5), DECEMBER.end + timedelta(hours=2))
    outside = (DECEMBER.end + timedelta(days=1), DECEMBER.end + timedelta(days=2))
    assert clip([before, after, outside], DECEMBER.start, DECEMBER.end) == [
        (DECEMBER.start, DECEMBER.start + timedelta(minutes=10)),
        (DECEMBER.end - timedelta(minutes=5), DECEMBER.end),
    ]
    a = DECEMBER.start
    assert union([(a, a + STEP), (a + STEP, a + 3 * STEP), (a + 5 * STEP, a + 6 * STEP)]) == [
        (a, a + 3 * STEP),
        (a + 5 * STEP, a + 6 * STEP),
    ]


def test_a_clipped_incident_counts_its_part_in_the_month() -> None:
    # failed from 30 min before the month until 10 min into it
    start = T0 - 1800
    states = sample_states([series("hostops-icmp", samples("0" * 80 + "1", start=start))])
    down = clip(down_spans(states, STEP), DECEMBER.start, DECEMBER.end)
    found = server_incidents(SERVER, down, [], [])
    result = compute(MonthInput(DECEMBER, Decimal(100), timedelta(hours=4), (found[0].incident,)))
    assert result.provider_time == timedelta(minutes=10)


def announcement(start: datetime, minutes: int, announced: datetime, *hosts: str) -> Announcement:
    return Announcement(
        hosts=hosts,
        start=start,
        end=start + timedelta(minutes=minutes),
        announced=announced,
        emergency=False,
        source="test",
    )


def test_down_time_inside_announced_work_is_planned_outside_it_the_providers() -> None:
    start = DECEMBER.start + timedelta(days=10)
    down = [(start - timedelta(minutes=5), start + timedelta(minutes=40))]
    window = announcement(start, 30, start - timedelta(days=9), "app1")  # the short name
    found = server_incidents(SERVER, down, [window], [])
    assert [(f.incident.cause, f.source) for f in found] == [
        ("provider", "monitoring"),
        ("planned", "maintenance"),
        ("provider", "monitoring"),
    ]
    assert [f.incident.end - f.incident.start for f in found] == [
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(minutes=10),
    ]
    assert found[1].incident.announced == window.announced
    result = compute(
        MonthInput(DECEMBER, Decimal(100), timedelta(hours=4), tuple(f.incident for f in found))
    )
    assert result.provider_time == timedelta(minutes=15)
    assert result.excluded_planned_time == timedelta(minutes=30)
    # announced too late (7 days): the 8-day rule makes it the provider's
    late = announcement(start, 30, start - timedelta(days=7), SERVER)
    found = server_incidents(SERVER, down, [late], [])
    result = compute(
        MonthInput(DECEMBER, Decimal(100), timedelta(hours=4), tuple(f.incident for f in found))
    )
    assert result.provider_time == timedelta(minutes=45)
    # work announced for another server does not touch this one
    other = announcement(start, 30, start - timedelta(days=9), "db1.vidal.example")
    assert [f.incident.cause for f in server_incidents(SERVER, down, [other], [])] == ["provider"]


def test_announcements_as_maintenance_announce_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)
    start = (datetime.now(UTC) + timedelta(days=12)).replace(second=0, microsecond=0)
    assert (
        cli.main(
            [
                "maintenance",
                "announce",
                "--hosts",
                f"{SERVER},db1",
                "--start",
                start.isoformat(),
                "--duration",
                "45",
                "--contact",
                "luc@vidal.example",
            ]
        )
        == 0
    )
    broken = tmp_path / "maintenance" / "broken"
    broken.mkdir()
    (broken / "announce.json").write_text("{}")
    found, notes = read_announcements(tmp_path / "maintenance")
    (window,) = found
    assert window.hosts == (SERVER, "db1")
    assert window.start == start
    assert window.end - window.start == timedelta(minutes=45)
    assert window.start - window.announced > timedelta(days=11)
    assert len(notes) == 1 and "broken/announce.json" in notes[0]


def test_the_ops_file_is_merged_once_for_the_order() -> None:
    start = DECEMBER.start + timedelta(days=3)
    ticket = Incident(
        start, start + timedelta(hours=6), "provider", ticket_opened=start + timedelta(minutes=5)
    )
    client = Incident(start + timedelta(days=1), start + timedelta(days=1, hours=1), "client")
    down = [(start, start + timedelta(hours=6))]
    per_server = {
        SERVER: server_incidents(SERVER, down, [], [ticket, client]),
        "db1.vidal.example": server_incidents("db1.vidal.example", down, [], [ticket, client]),
    }
    everything = order_incidents(per_server)
    assert [f.source for f in everything].count("ops file") == 2  # the ticket and the client's
    result = compute(
        MonthInput(
            DECEMBER, Decimal(250), timedelta(hours=4), tuple(f.incident for f in everything)
        )
    )
    # the same six hours on two servers and in the ticket: counted once
    assert result.provider_time == timedelta(hours=6)
    assert result.client_time == timedelta(hours=1)
    # the ticket's GTR: restored 5 h 55 min after it, 1 h 55 min over 4 h: 30 %
    assert result.gtr_credit_eur == Decimal("75.00")


def test_alerts_raised_are_counted_by_their_firing_runs() -> None:
    result = [
        {"metric": {"alertname": "HostDown", "server": SERVER}, "values": samples("11..1")},
        {"metric": {"alertname": "HostHighCpu", "server": SERVER}, "values": samples(".1")},
    ]
    for item in result:
        item["values"] = [[t, v] for t, v in item["values"]]
    assert alert_counts(result, STEP) == {"HostDown": 2, "HostHighCpu": 1}


def test_probe_query_names_the_server_and_the_probes() -> None:
    assert probe_query(SERVER) == (
        'probe_success{server="app1.vidal.example",job=~"hostops-icmp|hostops-http"}'
    )


# -- the command ---------------------------------------------------------------------------------

ORDER = {
    "version": 1,
    "order": "BDC-2027-0193",
    "customer": {
        "name": "Vidal Transports",
        "contact": {
            "name": "Luc Vidal",
            "phone": "+33 4 91 00 00 09",
            "email": "luc@vidal.example",
        },
    },
    "service": "private_cloud",
    "os": "debian13",
    "managed_level": "supervision",
    "servers": [{"hostname": SERVER}],
    "backups": {"enabled": False},
    "sla": {"monthly_fee_eur": 180, "gtr_hours": 4},
}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory knowing the order (as 'order apply' records it), the monitoring
    credentials in place, and an inventory with a monitoring server."""
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTOPS_CONFIG", str(tmp_path / "config.yml"))
    (tmp_path / "config.yml").write_text("{}\n")
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)
    path = tmp_path / "order.yml"
    path.write_text(yaml.safe_dump(ORDER))
    order = load_order(path)
    fleet.write_order(tmp_path / "state" / "orders" / order.id, order.to_vars())
    secrets = tmp_path / "state" / "monitoring"
    secrets.mkdir()
    (secrets / "ops-password").write_text("x\n")
    (secrets / "ca.crt").write_text("")
    return tmp_path


def report(*args: str) -> int:
    return cli.main(["sla", "report", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "--month: '2026-13' is not a month written YYYY-MM"),
        (["--month", "12-2026"], "--month: '12-2026' is not a month written YYYY-MM"),
        (["--month", "2999-01"], "--month: 2999-01 has not started yet"),
        (["--order", "BDC-2027-9999"], "--order: 'BDC-2027-9999' is not a known order"),
        (["--order", "x;rm"], "--order: 'x;rm' is not an order number"),
        (["--inventory", "/nonexistent.yml"], "--inventory: /nonexistent.yml does not exist"),
        (["--lab", "--monitoring-server", "Mon_1"], "--monitoring-server: 'Mon_1'"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    state: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    defaults = {"--order": "BDC-2027-0193", "--month": "2026-11"}
    given = dict(zip(args[::2], args[1::2], strict=False))
    base = [x for k, v in defaults.items() if k not in given for x in (k, v)]
    where = [] if {"--inventory", "--lab"} & set(args) else ["--inventory", str(inventory(state))]
    assert report(*base, *args, *where) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


def inventory(tmp_path: Path, group: bool = True) -> Path:
    path = tmp_path / ("inventory.yml" if group else "bare.yml")
    hosts = {"mon1.alteo.example": {"ansible_host": "192.0.2.10"}}
    data = {"all": {"children": {"monitoring_servers" if group else "other": {"hosts": hosts}}}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_no_monitoring_server_no_sla_no_contact(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--order", "BDC-2027-0193", "--month", "2026-11"]
    assert report(*args, "--inventory", str(inventory(state, group=False))) == 2
    assert "--monitoring-server: required: the inventories have no host in the group " in (
        capsys.readouterr().err
    )
    # Ansible's implicit localhost is the controller, not a monitoring server
    where = ["--inventory", str(inventory(state))]
    assert report(*args, *where, "--monitoring-server", "localhost") == 2
    assert "--monitoring-server: 'localhost' is in none of the inventories" in (
        capsys.readouterr().err
    )
    # the order without its sla block, and without a contact, asked to --send
    record = state / "state" / "orders" / "BDC-2027-0193" / "order.json"
    data = json.loads(record.read_text())
    data["hostops_sla"] = None
    data["hostops_customer"]["contact"] = None
    record.write_text(json.dumps(data))
    assert report(*args, "--send", "--inventory", str(inventory(state))) == 2
    err = capsys.readouterr().err
    assert "--order: order BDC-2027-0193 has no sla block" in err
    assert "--send: order BDC-2027-0193 names no contact email" in err
    # the credentials the playbooks make must be there
    (state / "state" / "monitoring" / "ops-password").unlink()
    assert report(*args, "--inventory", str(inventory(state))) == 2
    assert "monitoring/ops-password: the monitoring's credentials are made by" in (
        capsys.readouterr().err
    )


def test_an_incidents_file_of_another_month_is_refused(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = state / "incidents.yml"
    path.write_text("month: 2026-10\nmonthly_fee_eur: 250\ngtr_hours: 4\nincidents: []\n")
    bad = state / "bad.yml"
    bad.write_text("month: 2026-11\nmonthly_fee_eur: -1\ngtr_hours: 4\nincidents: []\n")
    base = ["--order", "BDC-2027-0193", "--month", "2026-11", "--inventory", str(inventory(state))]
    assert report(*base, "--incidents", str(path)) == 2
    assert f"--incidents: {path} is for month 2026-10, not 2026-11" in capsys.readouterr().err
    assert report(*base, "--incidents", str(bad)) == 2
    assert "--incidents: monthly_fee_eur: -1 must be at least 0" in capsys.readouterr().err


def test_the_plot_and_the_markdown(tmp_path: Path) -> None:
    start = DECEMBER.start + timedelta(days=4, hours=3)
    down = [(start, start + timedelta(minutes=20))]
    found = server_incidents(SERVER, down, [], [])
    result = compute(
        MonthInput(DECEMBER, Decimal(180), timedelta(hours=4), tuple(f.incident for f in found))
    )
    reports = {SERVER: ServerReport(SERVER, found, result, timedelta(days=5), {})}
    path = tmp_path / "availability.png"
    plot(path, DECEMBER, DECEMBER.start + timedelta(days=6), reports, result)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    document = {
        "order": "BDC-2027-0193",
        "customer": "Vidal Transports",
        "month": "2026-12",
        "measured_until": "2026-12-07T00:00:00+01:00",
        "complete": False,
        "monthly_fee_eur": 180.0,
        "gtr_hours": 4.0,
        "monitoring": {"server": "mon1", "probes": ["hostops-icmp"], "step_seconds": 30.0},
        "summary": {
            "availability_percent": 99.955197,
            "target_met": True,
            "unavailable_seconds": 1200,
            "availability_penalty_eur": 0.0,
            "gtr_penalty_eur": 0.0,
            "total_credit_eur": 0.0,
        },
        "incidents": [
            {
                "start": "2026-12-05T03:00:00+01:00",
                "end": "2026-12-05T03:20:00+01:00",
                "duration_seconds": 1200,
                "cause": "provider",
                "counted_as": "provider",
                "source": "monitoring",
            },
        ],
        "notes": [],
        "servers": [],
    }
    text = render_markdown(document)
    assert "| order | 99.955197 % | met | 20 min | 0.00 EUR |" in text
    assert "| 2026-12-05T03:00:00+01:00 | 2026-12-05T03:20:00+01:00 | 20 min | provider" in text
    assert "a partial report" in text


def test_the_delivery_note_is_sent_once_per_content(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = load_order(state / "order.yml")
    folder = state / "state" / "orders" / order.id
    note = folder / "delivery-note.md"
    note.write_text("# Delivery note\n")
    (folder / "delivery-note.json").write_text("{}\n")
    # no relay configured: written, not sent, and tried again at the next apply
    assert "no HOSTOPS_SMTP_HOST: not sent" in provision.send_delivery_note(order, note)
    assert (folder / "delivery-note.eml").exists()
    assert not (folder / "delivery-note-sent.json").exists()
    sent = {"sha256": "0" * 64, "to": ["luc@vidal.example"], "sent_at": "2026-12-01T10:00:00+01:00"}
    (folder / "delivery-note-sent.json").write_text(json.dumps(sent))
    assert "no HOSTOPS_SMTP_HOST" in provision.send_delivery_note(order, note)  # changed note
    sent["sha256"] = hashlib.sha256(note.read_bytes()).hexdigest()
    (folder / "delivery-note-sent.json").write_text(json.dumps(sent))
    assert provision.send_delivery_note(order, note) == (
        "already sent to luc@vidal.example on 2026-12-01T10:00:00+01:00 (unchanged)"
    )


def test_the_report_reads_each_backup_verify_where_the_run_left_its_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'hostops backup verify' keeps ansible-runner's files under its run directory; the
    client report (§4) reads each run's outcome from there, not 'unknown'."""
    from hostops.backup import cli as backup_cli  # noqa: PLC0415
    from hostops.sla.document import verify_runs  # noqa: PLC0415

    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    host = "web01.martin.example"

    class Result:  # what PlaybookRun.execute gives: a run that published its answer
        ok = True
        artifacts: ClassVar[dict[str, Any]] = {"hostops_backup": {host: {"ok": True}}}

    class Run:  # ansible-runner's part: its status file under the private data dir
        def __init__(self, **options: Any) -> None:
            self.private = Path(options["run_dir"])

        def execute(self) -> Result:
            status = self.private / "artifacts" / "0f1e" / "status"
            status.parent.mkdir(parents=True)
            status.write_text("successful")
            return Result()

    monkeypatch.setattr(backup_cli, "PlaybookRun", Run)
    target = backup_cli.Target(host, [])
    backup_cli.run_playbook(target, "backup-verify.yml", "verify", {}, io.StringIO())
    now = datetime.now(UTC).astimezone(ZoneInfo("Europe/Paris"))
    [run] = verify_runs(host, Month(now.year, now.month))
    assert run["status"] == "successful" and run["run"].endswith("-verify"), run
    # the control: a verify run that left no status is told as such
    (tmp_path / "state" / "backups" / host / "runs" / "20000101T000000000000Z-verify").mkdir()
    assert verify_runs(host, Month(2000, 1)) == [
        {"run": "20000101T000000000000Z-verify", "status": "unknown"}
    ]
    assert verify_runs(host, Month(2000, 2)) == []  # and a month without runs has none


def test_the_report_counts_the_months_patch_runs_not_plans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packages §4's report lists come from the patch runs of the month, in the
    directories patch runs make (hostops.patching.run), plans and other months left out."""
    from hostops.core.settings import new_run_dir  # noqa: PLC0415
    from hostops.sla.document import patch_runs  # noqa: PLC0415

    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    server = "web01.martin.example"
    in_month = datetime(2027, 4, 13, 9, 30, tzinfo=UTC)

    def report(moment: datetime, kind: str, check_mode: bool, applied: list[str]) -> None:
        folder = new_run_dir("patch-runs", kind=kind, moment=moment) / "reports"
        folder.mkdir()
        result = {"applied": [{"name": n, "to": "1.2"} for n in applied], "held": []}
        data = {"check_mode": check_mode, "result": result}
        (folder / f"{server}.json").write_text(json.dumps(data))

    report(in_month, "run", False, ["openssl", "nginx"])
    report(in_month + timedelta(days=1), "plan", True, ["curl"])
    report(datetime(2027, 5, 2, 9, 0, tzinfo=UTC), "run", False, ["bash"])
    assert patch_runs(server, Month(2027, 4)) == {
        "runs": 1,
        "applied": ["openssl 1.2", "nginx 1.2"],
        "held": [],
    }
