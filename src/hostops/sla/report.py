"""``hostops sla report``: one order's month of service levels, built from what was recorded.

Three sources of incidents, merged, then the calculator of ``hostops sla compute``
(:mod:`hostops.module_utils.sla`):

* **Prometheus** on the monitoring server: the ping and HTTP probes' ``probe_success``
  over the month (``query_range`` with the probes' scrape interval as its step). A
  server is down at an instant when one of its probes failed then; a run of failed
  samples is one provider incident from the first failed sample to one step after the
  last (the resolution is the scrape interval). Instants without samples (monitoring
  down, the server not registered yet or isolated) are unknown, not down: the report
  says how much of the month was measured.
* **Maintenance announcements** hostops recorded (``hostops maintenance announce``,
  ``<state>/maintenance/*/announce.json``): the measured down-time inside an announced
  window becomes a ``planned`` incident with its announcement time, so the 8-day rule
  decides (§5.5); outside the window it stays the provider's.
* **An ops file** (``--incidents FILE``, the schema of ``sla compute``): tickets and
  causes (client, planned) kept by ops, added to every server of the order; its
  ``monthly_fee_eur`` and ``gtr_hours`` win over the order's ``sla`` block.

Everything here but :class:`Prometheus` and :func:`plot` is plain data in, data out, so
that it can be tested on real API answers without a server.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import yaml

from hostops.core.errors import HostopsError
from hostops.module_utils.sla import Incident

PARIS: Final = ZoneInfo("Europe/Paris")
# The probes whose failures are the server's unavailability (issue 18: ping and HTTP).
PROBE_JOBS: Final = ("hostops-icmp", "hostops-http")
PROMETHEUS_PORT: Final = 9090
# Prometheus refuses a range query of more than 11 000 points per series.
MAX_POINTS: Final = 10_000
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")

Span = tuple[datetime, datetime]


# -- Reading Prometheus's answers --------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration (``30s``, ``1m30s``, ``2h``) as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a Prometheus duration")
    days, hours, minutes, seconds, millis = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, milliseconds=millis)


def scrape_interval(config_yaml: str, jobs: Sequence[str] = PROBE_JOBS) -> timedelta:
    """The shortest scrape interval of JOBS in Prometheus's configuration (the text
    ``/api/v1/status/config`` answers), each job's own or the global one (default 1m)."""
    config = yaml.safe_load(config_yaml) or {}
    default = parse_duration(str((config.get("global") or {}).get("scrape_interval", "1m")))
    found = [
        parse_duration(str(job["scrape_interval"])) if job.get("scrape_interval") else default
        for job in config.get("scrape_configs") or []
        if job.get("job_name") in jobs
    ]
    return min(found) if found else default


def sample_states(result: Iterable[Mapping[str, Any]]) -> dict[float, bool]:
    """Per evaluation time of a range query's matrix, whether any series was down (0).

    A time no series has a value for is absent: unknown, not up."""
    states: dict[float, bool] = {}
    for series in result:
        for stamp, value in series.get("values", []):
            moment = float(stamp)
            states[moment] = states.get(moment, False) or float(value) == 0
    return states


def down_spans(states: Mapping[float, bool], step: timedelta) -> list[Span]:
    """Runs of failed samples as intervals ``[first failure, last failure + step)``.

    Samples are consecutive when one step apart; a missing sample (no data) or a
    successful one ends a run."""
    seconds = step.total_seconds()
    spans: list[Span] = []
    first: float | None = None
    last: float | None = None
    for moment in sorted(states):
        if not states[moment]:
            if first is not None and last is not None:
                spans.append(_span(first, last + seconds))
            first = last = None
            continue
        if first is not None and last is not None and moment - last <= seconds * 1.5:
            last = moment
            continue
        if first is not None and last is not None:
            spans.append(_span(first, last + seconds))
        first = last = moment
    if first is not None and last is not None:
        spans.append(_span(first, last + seconds))
    return spans


def _span(start: float, end: float) -> Span:
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def measured_time(states: Mapping[float, bool], step: timedelta) -> timedelta:
    """How much of the range the samples cover (one step each)."""
    return step * len(states)


# -- Putting incidents together -----------------------------------------------------------------


def clip(spans: Iterable[Span], start: datetime, end: datetime) -> list[Span]:
    """The parts of SPANS inside ``[start, end)``; spans wholly outside are dropped."""
    clipped = []
    for first, last in spans:
        a, b = max(first, start), min(last, end)
        if a < b:
            clipped.append((a, b))
    return clipped


def union(spans: Iterable[Span]) -> list[Span]:
    """Overlapping or touching spans merged, in order."""
    merged: list[Span] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


@dataclass(frozen=True)
class Announcement:
    """Planned work hostops announced (``maintenance announce``): its window and when."""

    hosts: tuple[str, ...]
    start: datetime
    end: datetime
    announced: datetime
    emergency: bool
    source: str

    def concerns(self, server: str) -> bool:
        short = server.split(".", 1)[0]
        return any(host in (server, short) for host in self.hosts)


def read_announcements(folder: Path) -> tuple[list[Announcement], list[str]]:
    """The announcements recorded under ``<state>/maintenance``; records that cannot be
    read are named in the notes, not fatal (a report is still owed)."""
    found: list[Announcement] = []
    notes: list[str] = []
    if not folder.is_dir():
        return found, notes
    for path in sorted(folder.glob("*/announce.json")):
        try:
            data = json.loads(path.read_text())
            start = datetime.fromisoformat(data["start"])
            announced = datetime.fromisoformat(data["announced_at"])
            minutes = int(data["duration_minutes"])
            hosts = tuple(str(h) for h in data["hosts"])
            if start.tzinfo is None or announced.tzinfo is None:
                raise ValueError("a time without its UTC offset")
        except (OSError, ValueError, KeyError, TypeError) as err:
            notes.append(f"{path}: not a readable announcement ({err}); not used")
            continue
        found.append(
            Announcement(
                hosts=hosts,
                start=start.astimezone(UTC),
                end=(start + timedelta(minutes=minutes)).astimezone(UTC),
                announced=announced.astimezone(UTC),
                emergency=bool(data.get("emergency")),
                source=str(path),
            )
        )
    return found, notes


@dataclass(frozen=True)
class Found:
    """One incident of the report, with where it came from."""

    incident: Incident
    source: str  # monitoring | maintenance | ops file


def server_incidents(
    server: str,
    down: Sequence[Span],
    announcements: Sequence[Announcement],
    ops: Sequence[Incident],
) -> list[Found]:
    """The incidents of one server: measured down-time, split where announced planned
    work covers it (that part is ``planned`` with its announcement time), and the ops
    file's incidents."""
    windows = [a for a in announcements if a.concerns(server)]
    found: list[Found] = []
    for start, end in down:
        pieces: list[tuple[Span, Announcement | None]] = [((start, end), None)]
        for window in sorted(windows, key=lambda w: w.start):
            split: list[tuple[Span, Announcement | None]] = []
            for (a, b), owner in pieces:
                if owner is not None or b <= window.start or a >= window.end:
                    split.append(((a, b), owner))
                    continue
                inner = (max(a, window.start), min(b, window.end))
                if a < inner[0]:
                    split.append(((a, inner[0]), None))
                split.append((inner, window))
                if inner[1] < b:
                    split.append(((inner[1], b), None))
            pieces = split
        for (a, b), owner in pieces:
            if owner is None:
                found.append(Found(Incident(a, b, "provider"), "monitoring"))
            else:
                incident = Incident(a, b, "planned", announced=owner.announced)
                found.append(Found(incident, "maintenance"))
    found += [Found(incident, "ops file") for incident in ops]
    return sorted(found, key=lambda f: (f.incident.start, f.incident.end))


def order_incidents(per_server: Mapping[str, Sequence[Found]]) -> list[Found]:
    """The order's incidents: every server's (the service is down when one server is;
    time two servers share counts once, as the calculator counts overlaps), the ops
    file's once."""
    seen: set[Incident] = set()
    found: list[Found] = []
    for incidents in per_server.values():
        for item in incidents:
            if item.source == "ops file":
                if item.incident in seen:
                    continue
                seen.add(item.incident)
            found.append(item)
    return sorted(found, key=lambda f: (f.incident.start, f.incident.end))


# -- Prometheus ---------------------------------------------------------------------------------


class PrometheusError(HostopsError):
    """Prometheus could not be asked, or answered an error."""


@dataclass(frozen=True)
class Prometheus:
    """Prometheus's HTTP API as the ops user, over TLS trusting the monitoring CA."""

    url: str
    username: str
    password: str
    cafile: Path
    timeout: float = 60

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        request = urllib.request.Request(f"{self.url}{path}?{query}")  # noqa: S310 - https
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=str(self.cafile))
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only
                request, timeout=self.timeout, context=context
            ) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as err:
            raise PrometheusError(f"{self.url}{path}: HTTP {err.code} {err.reason}") from None
        except (OSError, ValueError) as err:
            raise PrometheusError(f"{self.url}{path}: {err}") from None
        if answer.get("status") != "success":
            raise PrometheusError(f"{self.url}{path}: {answer.get('error', answer)}")
        return answer["data"]

    def step(self) -> timedelta:
        return scrape_interval(self.get("/api/v1/status/config")["yaml"])

    def range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[dict[str, Any]]:
        """A range query split in chunks of at most MAX_POINTS points; the series' values
        of all chunks, joined by labels."""
        series: dict[str, dict[str, Any]] = {}
        chunk = step * MAX_POINTS
        moment = start
        while moment < end:
            last = min(moment + chunk - step, end)
            data = self.get(
                "/api/v1/query_range",
                query=promql,
                start=f"{moment.timestamp():.3f}",
                end=f"{last.timestamp():.3f}",
                step=f"{step.total_seconds():g}s",
            )
            for item in data["result"]:
                key = json.dumps(item["metric"], sort_keys=True)
                series.setdefault(key, {"metric": item["metric"], "values": []})
                series[key]["values"].extend(item["values"])
            moment += chunk
        return list(series.values())

    def instant(self, promql: str, at: datetime) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(
            "/api/v1/query", query=promql, time=f"{at.timestamp():.3f}"
        )["result"]
        return result


def probe_query(server: str, jobs: Sequence[str] = PROBE_JOBS) -> str:
    """``probe_success`` of one server's probes (SERVER is a checked host name)."""
    return f'probe_success{{server="{server}",job=~"{"|".join(jobs)}"}}'


def alert_counts(result: Iterable[Mapping[str, Any]], step: timedelta) -> dict[str, int]:
    """How many times each alert started firing, from a range query of ``ALERTS``."""
    counts: dict[str, int] = {}
    for series in result:
        name = str(series.get("metric", {}).get("alertname", "?"))
        states = {float(t): True for t, _ in series.get("values", [])}
        counts[name] = counts.get(name, 0) + len(down_spans(states, step))
    return dict(sorted(counts.items()))
