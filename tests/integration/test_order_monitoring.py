"""An order of level supervision applied end to end, monitored (needs root).

Two Debian 13 lab hosts: a monitoring server (playbooks/monitoring-server.yml) and the
order's server, which 'hostops order apply --lab --monitoring-server' provisions and
registers. One story, in order: check mode changes nothing on either host; the apply
registers the server and Prometheus's API shows its probes succeeding, with the order's
labels (Prometheus is asked over TLS as the ops user, and scrapes the new server's node
exporter over TLS with the scrape password, both made on the controller in the test's
state directory); a second apply changes nothing; 'hostops monitor deregister' removes
the targets, and the order applied again leaves it out until 'monitor register'.

The monitoring server also runs the lab's mail server (a Postfix holding the contact's
mailbox, as in the molecule scenario monitoring-server-trixie): the first apply, with
--no-send, sends nothing; the second sends the delivery note, which arrives. Then the
server is taken off the network for a minute, and 'hostops sla report' for the current
month finds that incident, its duration within the probes' resolution, writes the
Markdown, JSON and PNG, and mails them to the contact.

Before that, the security watch the order installed (level supervision): the server put
behind on libxml2, debsecan fed offline data made from Debian's own changelog of the
newer version lists its CVEs, 'hostops security report' shows them for the customer, and
Prometheus scrapes their count, which goes back to 0 once the package is up to date.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import host_state
import pytest
import yaml
from lab_helpers import QUIET_APT, monitoring_server, owned_prefixes

from hostops.lab.nspawn import lab_id

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ORDER_ID = "BDC-2027-0193"
ORDER_PREFIX = "bdc-2027-0193-"
ORDER_HOST = f"{ORDER_PREFIX}1"
SERVER = "app1.vidal.example"
MON_PREFIX = "ordermon-"
MON = f"{MON_PREFIX}1"
CONTACT = "luc@vidal.example"
MAILDIR = "/home/luc/Maildir/new"
SCRAPE_SECONDS = 5  # the monitoring server's scrape interval in this module
T = TypeVar("T")
# The lab's mail server on the monitoring host: Postfix delivering the contact's domain
# to local Maildirs, reachable on port 25 from the lab machine (the controller that
# sends the delivery note and the report).
LAB_MAIL_SERVER = " && ".join(
    [
        QUIET_APT,
        "echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections",
        "echo 'postfix postfix/mailname string ordermon.lab' | debconf-set-selections",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
        " -o DPkg::Lock::Timeout=300 postfix",
        "postconf -e 'mydestination=$myhostname, localhost, vidal.example'"
        " home_mailbox=Maildir/ inet_interfaces=all inet_protocols=ipv4",
        "(id luc || useradd --create-home --shell /usr/sbin/nologin luc)",
        "systemctl restart postfix",
        # the monitoring server's host firewall lets in what it serves only
        "nft insert rule inet hostops input tcp dport 25 accept",
    ]
)


def address(cli: Any, name: str) -> str:
    status = cli("lab", "status", check=True).stdout
    return next(line.split()[2] for line in status.splitlines() if line.startswith(f"{name} "))


def mails(cli: Any, needle: str) -> list[str]:
    """The contact's messages holding NEEDLE (reading the mailbox must work: a failed
    read is an error, not an empty mailbox)."""
    proc = cli(
        "lab",
        "ssh",
        MON,
        "--",
        f"mkdir -p {MAILDIR} && grep -l -r -F -- '{needle}' {MAILDIR} || true",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(proc.stdout.split())


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """PROBE's first true answer within TIMEOUT seconds; a probe that cannot reach its
    server (Prometheus restarting, a slow answer) is asked again until then."""
    deadline = time.monotonic() + timeout
    last: T | OSError | None = None
    while time.monotonic() < deadline:
        try:
            answer = probe()
        except OSError as err:  # URLError, a time-out, a refused connection
            last = err
        else:
            if answer:
                return answer
            last = answer
        time.sleep(2)
    raise AssertionError(f"{what}: not seen within {timeout:.0f}s (last: {last!r})")


@pytest.fixture(scope="module")
def lab(
    cli: Any, root_user: None, tmp_path_factory: pytest.TempPathFactory, state_dir: Path
) -> Iterator[dict[str, Any]]:
    """The monitoring server set up, the order's server booted fresh, and the order. The
    state directory comes first: the monitoring's CA and passwords live in it, for the
    monitoring server's set-up and the order's apply alike."""
    tmp = tmp_path_factory.mktemp("order-monitoring")
    with owned_prefixes(cli, MON_PREFIX, ORDER_PREFIX):
        inventory = tmp / "monitoring.yml"
        monitoring_server(
            cli, MON_PREFIX, inventory,
            "-e", "monitoring_server_scrape_interval=5s monitoring_server_evaluation_interval=5s",
        )  # fmt: skip
        cli(
            "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", ORDER_PREFIX, check=True
        )
        server_address = address(cli, ORDER_HOST)
        mon_address = address(cli, MON)
        cli("lab", "ssh", MON, "--", LAB_MAIL_SERVER, check=True)
        # positive control: a message sent from here reaches the contact's mailbox
        with smtplib.SMTP(mon_address, 25, timeout=30) as smtp:
            smtp.sendmail("ops@alteo.example", [CONTACT], b"Subject: lab control\r\n\r\nok\r\n")
        wait_for("the control message", lambda: mails(cli, "Subject: lab control"), timeout=60)
        order = tmp / "order.yml"
        order.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "order": ORDER_ID,
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
                    "bandwidth_mbps": 150,
                    "servers": [{"hostname": SERVER}],
                    "backups": {"enabled": False},
                    # the lab has no DNS: the check names the server by its address
                    "monitoring": {"tcp_checks": [f"{server_address}:22"]},
                    "sla": {"monthly_fee_eur": 180, "gtr_hours": 4},
                },
                sort_keys=False,
            )
        )
        saved = {k: os.environ.get(k) for k in ("HOSTOPS_SMTP_HOST", "HOSTOPS_SMTP_PORT")}
        os.environ.update(HOSTOPS_SMTP_HOST=mon_address, HOSTOPS_SMTP_PORT="25")
        try:
            yield {
                "order": order,
                "mon": mon_address,
                "server": server_address,
                "secrets": state_dir / "monitoring",
            }
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def api(lab: dict[str, Any], path: str, **params: str) -> Any:
    """Prometheus's API as an operator: TLS trusting the monitoring CA, the ops user."""
    request = urllib.request.Request(
        f"https://{lab['mon']}:9090{path}?{urllib.parse.urlencode(params)}"
    )
    password = (lab["secrets"] / "ops-password").read_text().strip()
    token = base64.b64encode(f"ops:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(lab["secrets"] / "ca.crt"))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
        return json.load(response)


def targets(lab: dict[str, Any]) -> list[dict[str, Any]]:
    active = api(lab, "/api/v1/targets", state="active")["data"]["activeTargets"]
    return [t for t in active if t["labels"].get("server") == SERVER]


def fingerprint(cli: Any, host: str) -> dict[str, list[str]]:
    """The host's configuration (tests/integration/host_state.py) and the monitoring
    server's registrations under /var/lib/prometheus; its time series, Alertmanager's
    silences and notification log and the node exporter's textfiles change on their own."""
    return host_state.of_lab_host(
        cli,
        host,
        trees=(*host_state.TREES, "/var/lib/prometheus"),
        excluded=(
            *host_state.EXCLUDED,
            "/var/lib/prometheus/metrics2",
            "/var/lib/prometheus/alertmanager",
            "/var/lib/prometheus/node-exporter",
        ),
    )


def apply(cli: Any, lab: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("order", "apply", str(lab["order"]), "--lab", "--monitoring-server", MON, *extra)


def test_a_bad_monitoring_server_name_is_refused_before_any_host_is_touched(
    cli: Any, lab: dict[str, Any]
) -> None:
    before = cli("lab", "status", check=True).stdout
    proc = cli("order", "apply", str(lab["order"]), "--lab", "--monitoring-server", "Mon_1;rm")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--monitoring-server: 'Mon_1;rm' is not a lab host name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert cli("lab", "status", check=True).stdout == before  # nothing booted


def test_check_mode_changes_nothing(cli: Any, lab: dict[str, Any], state_dir: Path) -> None:
    before = {host: fingerprint(cli, host) for host in (MON, ORDER_HOST)}
    proc = apply(cli, lab, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    predicted = int(proc.stdout.split("check mode predicts ")[1].split()[0])
    assert predicted > 0
    for host in (MON, ORDER_HOST):
        assert host_state.differences(before[host], fingerprint(cli, host)) == [], host


def test_apply_registers_the_server(cli: Any, lab: dict[str, Any], state_dir: Path) -> None:
    proc = apply(cli, lab, "--no-send")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Write the server's targets file" in proc.stdout
    # --no-send: the note is written, not sent (the control message came through)
    assert "delivery note sent" not in proc.stdout
    assert not (state_dir / "orders" / ORDER_ID / "delivery-note.eml").exists()

    def probes_succeed() -> dict[str, str] | None:
        results = api(lab, "/api/v1/query", query=f'probe_success{{server="{SERVER}"}}')
        values = {r["metric"]["job"]: r["value"][1] for r in results["data"]["result"]}
        return values if values == {"hostops-icmp": "1", "hostops-tcp": "1"} else None

    wait_for("the ping and TCP probes succeeding", probes_succeed, timeout=90)
    scraped = wait_for(
        "node metrics",
        lambda: api(lab, "/api/v1/query", query=f'node_load1{{server="{SERVER}"}}')["data"][
            "result"
        ],
        timeout=60,
    )
    labels = scraped[0]["metric"]
    # the lab host answers to the order's name too ('--lab --host app1.vidal.example')
    assert cli("lab", "ssh", SERVER, "--", "true").returncode == 0
    assert SERVER in cli("lab", "status", check=True).stdout
    assert labels["order"] == ORDER_ID
    assert labels["level"] == "supervision"
    assert labels["contact_email"] == "luc@vidal.example"
    assert labels["bandwidth_cap_mbps"] == "150"  # the order's own cap
    note = json.loads((state_dir / "orders" / ORDER_ID / "delivery-note.json").read_text())
    assert "prometheus-node-exporter" in note["servers"][0]["software"]
    assert mails(cli, "Subject: lab control")  # the mailbox reads
    assert mails(cli, "Bon de livraison") == []


def test_second_apply_changes_nothing(cli: Any, lab: dict[str, Any], state_dir: Path) -> None:
    proc = apply(cli, lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"order {ORDER_ID}: 0 change(s)" in proc.stdout
    # the note was not sent yet (--no-send above): this apply sends it, through the lab's
    # mail server, into the contact's mailbox
    assert f"delivery note sent to {CONTACT}" in proc.stdout
    (message,) = wait_for(
        "the delivery note in the contact's mailbox",
        lambda: mails(cli, f"Subject: Bon de livraison : commande {ORDER_ID}"),
        timeout=60,
    )
    text = cli("lab", "ssh", MON, "--", f"cat {message}", check=True).stdout
    assert f"To: {CONTACT}" in text
    assert SERVER in text
    assert 'filename="delivery-note.json"' in text


# The security watch (issue 19): a package put behind on purpose, the oldest version of
# it the archive offers; the lab's offline debsecan data made from the Debian changelog of
# the newest one (hostops.security.debsecan); debsecan itself lists the CVEs.
BEHIND_PACKAGE = "libxml2"
WATCH_DATA = "/var/lib/hostops-security-watch/offline"


def on_server(cli: Any, command: str) -> str:
    return str(cli("lab", "ssh", ORDER_HOST, "--", command, check=True).stdout)


def open_fixed(lab: dict[str, Any]) -> dict[str, float] | None:
    """The server's hostops_vulnerabilities in Prometheus, by fixed="true|false", summed
    over the urgencies; None until scraped."""
    results = api(
        lab,
        "/api/v1/query",
        query=f'sum by (fixed) (hostops_vulnerabilities{{server="{SERVER}"}})',
    )["data"]["result"]
    values = {r["metric"]["fixed"]: float(r["value"][1]) for r in results}
    return values if set(values) == {"true", "false"} else None


def counted(lab: dict[str, Any], fixable: int) -> dict[str, float] | None:
    values = open_fixed(lab)
    return values if values is not None and values["true"] == fixable else None


def test_security_watch_lists_the_cves_of_a_package_put_behind(
    cli: Any, lab: dict[str, Any], state_dir: Path
) -> None:
    from hostops.module_utils.versions import compare_versions  # noqa: PLC0415
    from hostops.security.debsecan import changelog_fixes, render  # noqa: PLC0415

    # the watch is installed by the order (level supervision), its timer enabled
    assert on_server(cli, "systemctl is-enabled hostops-security-watch.timer").strip() == "enabled"
    assert f"SOURCE=file://{WATCH_DATA}/" in on_server(cli, "cat /etc/default/debsecan")
    madison = on_server(cli, f"apt-cache madison {BEHIND_PACKAGE}")
    offered = sorted(
        {line.split("|")[1].strip() for line in madison.splitlines() if "|" in line},
        key=functools.cmp_to_key(compare_versions),
    )
    assert len(offered) >= 2, f"the archive offers one {BEHIND_PACKAGE} only: {madison}"
    old, new = offered[0], offered[-1]
    changelog = on_server(
        cli,
        f"{QUIET_APT} && apt-get install -y -q --allow-downgrades -o DPkg::Lock::Timeout=300"
        f' {BEHIND_PACKAGE}={old} >/dev/null && cd "$(mktemp -d)"'
        f" && apt-get download -q {BEHIND_PACKAGE}={new} >/dev/null"
        f" && dpkg-deb --fsys-tarfile {BEHIND_PACKAGE}_*.deb"
        f" | tar -xO ./usr/share/doc/{BEHIND_PACKAGE}/changelog.Debian.gz | zcat",
    )
    fixes = changelog_fixes(changelog, old)
    assert fixes, f"Debian's changelog of {BEHIND_PACKAGE} {new} names no CVE fixed since {old}"
    data = base64.b64encode(render(fixes)).decode()
    on_server(cli, f"mkdir -p {WATCH_DATA} && echo {data} | base64 -d > {WATCH_DATA}/trixie")

    # debsecan itself, as configured by the role, lists every one of them
    listed = on_server(cli, "debsecan --format summary")
    for fix in fixes:
        assert f"{fix.cve} {BEHIND_PACKAGE} (fixed" in listed, listed

    # the report, per customer: the CVEs, their fix a minor update (no approval needed)
    proc = cli("security", "report", "--lab", "--customer", "Vidal Transports", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads(proc.stdout)["hosts"]
    assert row["server"] == SERVER and row["order"] == ORDER_ID and row["status"] == "ok"
    mine = [v for v in row["vulnerabilities"] if v["package"] == BEHIND_PACKAGE]
    assert {v["cve"] for v in mine} == {fix.cve for fix in fixes}
    assert {(v["installed"], v["candidate"], v["update"]) for v in mine} == {(old, new, "minor")}
    assert not any(v["needs_approval"] for v in mine)
    # the weekly report: the contact gets its server's part by mail (the lab's relay)
    text = cli("security", "report", "--lab", "--host", SERVER, "--mail", check=True).stdout
    assert "customer Vidal Transports" in text and fixes[0].cve in text
    assert f"security report of order {ORDER_ID}: " in text, text
    wait_for(
        "the security report in the contact's mailbox",
        lambda: mails(cli, fixes[0].cve),
        timeout=60,
    )

    # the metric, scraped: the fixable count is the CVEs', the unfixed one 0 (a clean count)
    wait_for(
        "the CVEs counted in Prometheus",
        lambda: counted(lab, len(fixes)),
        timeout=90,
    )
    assert open_fixed(lab) == {"true": len(fixes), "false": 0.0}

    # brought up to date, the same data lists nothing and the count goes back to 0
    on_server(
        cli,
        f"apt-get install -y -q -o DPkg::Lock::Timeout=300 {BEHIND_PACKAGE}={new} >/dev/null"
        " && systemctl start hostops-security-watch.service",
    )
    assert BEHIND_PACKAGE not in on_server(cli, "debsecan --format summary")
    wait_for(
        "the count back to 0 in Prometheus",
        lambda: counted(lab, 0),
        timeout=90,
    )


def test_sla_report_finds_the_down_time(cli: Any, lab: dict[str, Any], state_dir: Path) -> None:
    """The server off the network for a minute: 'sla report' for the current month has
    that incident, as long as measured here within one scrape interval and the probe's
    own time-out (5 s: the blackbox exporter's, bounded by the scrape interval)."""
    netns = f"{lab_id()}-{ORDER_HOST}"
    query = f'probe_success{{job="hostops-icmp",server="{SERVER}"}} == 1'
    wait_for(
        "the server answering ping",
        lambda: api(lab, "/api/v1/query", query=query)["data"]["result"],
        60,
    )
    subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=True)
    down_at = time.time()
    try:
        time.sleep(60)
    finally:
        subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)
    up_at = time.time()
    wait_for(
        "the server answering ping again",
        lambda: api(lab, "/api/v1/query", query=query)["data"]["result"],
        60,
    )
    time.sleep(2 * SCRAPE_SECONDS)  # a few successful samples after the incident
    month = datetime.fromtimestamp(down_at, ZoneInfo("Europe/Paris")).strftime("%Y-%m")
    proc = cli(
        "sla", "report", "--order", ORDER_ID, "--month", month, "--lab",
        "--monitoring-server", MON, "--json", "--send",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    (server,) = report["servers"]
    assert server["hostname"] == SERVER
    near = [
        i for i in server["incidents"]
        if i["source"] == "monitoring"
        and abs(datetime.fromisoformat(i["start"]).timestamp() - down_at) < 30
    ]  # fmt: skip
    assert len(near) == 1, server["incidents"]
    measured = up_at - down_at
    tolerance = SCRAPE_SECONDS + 5 + 1  # one scrape interval, the probe's time-out, rounding
    assert abs(near[0]["duration_seconds"] - measured) <= tolerance, (near[0], measured)
    assert near[0]["cause"] == "provider"
    assert server["summary"]["unavailable_seconds"] >= near[0]["duration_seconds"]
    assert report["summary"]["availability_percent"] < 100
    folder = state_dir / "orders" / ORDER_ID / "reports" / month
    assert (folder / "availability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (folder / "report.md").read_text()
    assert SERVER in markdown and "## Incidents" in markdown
    assert json.loads((folder / "report.json").read_text()) == report
    wait_for(
        "the report in the contact's mailbox",
        lambda: mails(cli, f"Subject: Rapport mensuel {month} : commande {ORDER_ID}"),
        timeout=60,
    )


def registered(cli: Any) -> bool:
    """Whether the monitoring server's registry holds the server's targets file."""
    path = f"/etc/prometheus/hostops-targets/{SERVER}.yml"
    return cli("lab", "ssh", MON, "--", f"test -e {path}").returncode == 0


def test_deregister_removes_the_targets(cli: Any, lab: dict[str, Any], state_dir: Path) -> None:
    assert registered(cli)  # control: the apply registered it
    proc = cli("monitor", "deregister", SERVER, "--lab", "--server", MON)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_for("no targets left", lambda: not targets(lab) or None, timeout=60)
    # the server keeps running
    assert (
        cli(
            "lab", "ssh", ORDER_HOST, "--", "systemctl is-active prometheus-node-exporter"
        ).stdout.strip()
        == "active"
    )


def test_a_deregistered_server_stays_out_until_registered_again(
    cli: Any, lab: dict[str, Any], state_dir: Path
) -> None:
    # its order applied again (a re-run, AWX's schedule): it stays out, and says so
    proc = apply(cli, lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{SERVER} was deregistered from monitoring and stays out" in proc.stdout
    assert f"delivery note already sent to {CONTACT}" in proc.stdout  # unchanged: once
    assert not registered(cli)
    # an explicit registration (with the flag names the other commands use) lifts it
    proc = cli(
        "monitor", "register", "--host", SERVER, "--order", str(lab["order"]),
        "--lab", "--monitoring-server", MON,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert registered(cli)
    wait_for("the targets back", lambda: targets(lab) or None, timeout=90)
    proc = apply(cli, lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stays out" not in proc.stdout
    assert registered(cli)
