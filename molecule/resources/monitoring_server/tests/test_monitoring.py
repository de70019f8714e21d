"""A customer's server watched by the monitoring server, end to end on two lab hosts.

The first host runs Prometheus, Alertmanager, the blackbox exporter and a local Postfix
(the contact's mailbox); the second was registered at level supervision by converge.
The tests are one story, in order: the services and their configuration; the server's
targets up in Prometheus's API with the order's labels; a forbidden service raising its
alert; the server taken off the network raising HostDown within the configured delay and
the notification reaching the contact's mailbox; Prometheus, Alertmanager and the node
exporter refusing requests without credentials from another host, and answering
them with; the monitoring server's firewall letting only ops reach Prometheus and
Alertmanager, and only the monitoring servers the node exporter; a real certificate's
expiry read and alerted on; deregistration with 'hostops monitor'
removing the targets while the server keeps running; a basic-level registration getting
the ping probe only.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import testinfra
import yaml

from hostops.lab.nspawn import lab_id

INVENTORY = Path(os.environ["HOSTOPS_LAB_INVENTORY_FILE"])
_LAB = yaml.safe_load(INVENTORY.read_text())["all"]["children"]
MON, MANAGED = sorted(_LAB["lab_scenario"]["hosts"])
MON_ADDRESS = _LAB["lab"]["hosts"][MON]["ansible_host"]
ADDRESS = _LAB["lab"]["hosts"][MANAGED]["ansible_host"]
FQDN = _LAB["lab"]["hosts"][MANAGED]["hostops_fqdn"]
ORDER = "BDC-2027-0190"  # converge.yml
CONTACT_MAILDIR = "/home/claire/Maildir/new"
OPS_MAILDIR = "/home/ops/Maildir/new"
HOST_DOWN_FOR = 30  # seconds: monitoring_server_host_down_for in converge.yml
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[4]
# The monitoring CA and passwords converge made on the controller (playbooks/vars/monitoring.yml).
SECRETS = (
    Path(
        os.environ.get("HOSTOPS_STATE_DIR")
        or Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "state"
    )
    / "monitoring"
)

T = TypeVar("T")


# The tests name the host they run commands on (testinfra's own 'host' fixture would run
# every test on every host of the scenario).
@pytest.fixture(scope="module")
def mon() -> Any:
    return testinfra.get_host(f"ansible://{MON}", ansible_inventory=str(INVENTORY))


@pytest.fixture(scope="module")
def managed() -> Any:
    return testinfra.get_host(f"ansible://{MANAGED}", ansible_inventory=str(INVENTORY))


def api(port: int, path: str, **params: str) -> Any:
    """Prometheus's or Alertmanager's API as an operator: TLS, trusting the monitoring CA,
    and the ops user's password."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(f"https://{MON_ADDRESS}:{port}{path}{query}")
    password = (SECRETS / "ops-password").read_text().strip()
    token = base64.b64encode(f"ops:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(SECRETS / "ca.crt"))
    with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
        return json.load(response)


def query(promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = api(9090, "/api/v1/query", query=promql)["data"]["result"]
    return result


def targets_of(server: str) -> list[dict[str, Any]]:
    active = api(9090, "/api/v1/targets", state="active")["data"]["activeTargets"]
    return [t for t in active if t["labels"].get("server") == server]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 2) -> T:
    """Poll *probe* until it gives something true, at most *timeout* seconds. A probe that
    cannot reach Prometheus or Alertmanager this time (refused, timed out, a 503 while it
    reloads) is tried again until the deadline, which names the last error."""
    deadline = time.monotonic() + timeout
    last: T | Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
            last = err
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not seen within {timeout:.0f}s (last: {last!r})")


def hostops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault(
        "HOSTOPS_STATE_DIR", str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "state")
    )
    return subprocess.run(
        [str(BIN / "hostops"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@contextlib.contextmanager
def forbidden_check_timer_stopped(host: Any) -> Iterator[None]:
    """The forbidden services timer (every 5 minutes) stopped and its run finished: a
    'systemctl start' of the oneshot check would otherwise join a run already under way,
    whose result was computed before the test changed anything. Started again after."""
    unit = "hostops-forbidden-services.service"
    host.check_output("systemctl stop hostops-forbidden-services.timer")
    try:

        def idle() -> bool:
            state = host.run(f"systemctl is-active {unit}").stdout.strip()
            jobs = host.run(f"systemctl list-jobs --no-legend {unit}").stdout.strip()
            return state not in ("active", "activating", "deactivating") and not jobs

        wait_for("the forbidden services check idle", lambda: idle() or None, timeout=60, every=1)
        yield
    finally:
        host.run("systemctl start hostops-forbidden-services.timer")


def mails(host: Any, maildir: str, needle: str) -> list[str]:
    out = host.run(f"grep -l -F -e {needle} {maildir}/* 2>/dev/null").stdout
    return out.split()


def test_services_run_and_listen(mon: Any) -> None:
    for service in (
        "prometheus",
        "prometheus-alertmanager",
        "prometheus-blackbox-exporter",
        "prometheus-node-exporter",
    ):
        assert mon.service(service).is_running, service
        assert mon.service(service).is_enabled, service
    assert mon.socket("tcp://0.0.0.0:9090").is_listening
    assert mon.socket("tcp://0.0.0.0:9093").is_listening
    # nobody else may make the blackbox exporter probe
    assert mon.socket("tcp://127.0.0.1:9115").is_listening
    assert not mon.socket("tcp://0.0.0.0:9115").is_listening
    # ICMP probes need raw sockets
    assert "cap_net_raw" in mon.check_output("getcap /usr/bin/prometheus-blackbox-exporter")


# A GET from a lab host: the status and the start of the body, or the error. Arguments:
# URL, the CA file (or "-" for none: plain HTTP), the user and password (or "-").
GET_SCRIPT = """
import base64, ssl, sys, urllib.error, urllib.request
url, ca, user, password = sys.argv[1:5]
request = urllib.request.Request(url)
if user != "-":
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
context = ssl.create_default_context(cafile=ca) if ca != "-" else None
try:
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        print(response.status, response.read().decode(errors="replace"))
except urllib.error.HTTPError as err:
    print(err.code, err.read().decode(errors="replace"))
"""


def get_from(
    host: Any,
    url: str,
    ca: str = "-",
    user: str = "-",
    password: str = "-",  # noqa: S107
) -> str:
    return str(
        host.check_output(
            "python3 -c %s %s %s %s %s",
            GET_SCRIPT,
            url,
            ca,
            user,
            password,
        )
    )


def test_prometheus_and_alertmanager_refuse_strangers(mon: Any) -> None:
    """From this controller, another host and ops' admin source (the only one the
    monitoring server's firewall lets reach them): no credentials, a wrong password or
    plain HTTP get nothing; the ops user's password over TLS gets the API (the positive
    control beside each refusal)."""
    local = testinfra.get_host("local://")
    ca = str(SECRETS / "ca.crt")
    password = (SECRETS / "ops-password").read_text().strip()
    for port, path in ((9090, "/api/v1/status/buildinfo"), (9093, "/api/v2/status")):
        url = f"https://{MON_ADDRESS}:{port}{path}"
        assert get_from(local, url, ca).startswith("401 "), port
        assert get_from(local, url, ca, "ops", "not-the-password-00").startswith("401 "), port
        plain = get_from(local, f"http://{MON_ADDRESS}:{port}{path}")
        assert plain.startswith("400 ") and "HTTPS server" in plain, (port, plain)
        answer = get_from(local, url, ca, "ops", password)
        assert answer.startswith("200 "), (port, answer)
        assert '"version' in answer or '"cluster' in answer, answer
    # the web configuration keeps bcrypt hashes, never the passwords
    web = mon.file("/etc/prometheus/hostops-web.yml")
    assert web.mode == 0o640
    assert password not in web.content_string
    assert "ops: $2b$" in web.content_string
    assert mon.file("/etc/prometheus/hostops-tls/scrape-password").mode == 0o640


# A TCP connection from a lab host: exit status 0 when it is accepted within 5 s.
CONNECT_SCRIPT = """
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
"""


def connects_from(host: Any, address: str, port: int) -> bool:
    return bool(host.run("python3 -c %s %s %s", CONNECT_SCRIPT, address, str(port)).rc == 0)


def test_the_firewall_keeps_other_hosts_off_the_monitoring_services(mon: Any, managed: Any) -> None:
    """The monitoring server's firewall (issue 14): Prometheus and Alertmanager to ops'
    admin sources only (converge names this controller), the node exporter to the
    monitoring servers only. The customer's server is neither: it reaches SSH (the
    positive control from the same host) and nothing else; the controller reaches
    Prometheus and Alertmanager but not the node exporter."""
    local = testinfra.get_host("local://")
    assert connects_from(managed, MON_ADDRESS, 22)
    for port in (9090, 9093, 9100, 9115):
        assert not connects_from(managed, MON_ADDRESS, port), port
    assert connects_from(local, MON_ADDRESS, 9090)
    assert connects_from(local, MON_ADDRESS, 9093)
    assert not connects_from(local, MON_ADDRESS, 9100)
    # the monitoring server still scrapes its own node exporter (over loopback)
    assert connects_from(mon, MON_ADDRESS, 9100)
    assert "policy drop" in mon.check_output("nft list table inet hostops")


def test_node_exporter_answers_the_monitoring_server_only_with_the_password(mon: Any) -> None:
    """The customer's node exporter, from the monitoring server: refused without the scrape
    password, answered with it (what Prometheus does, with the same files)."""
    url = f"https://{ADDRESS}:9100/metrics"
    ca = "/etc/prometheus/hostops-tls/ca.pem"
    password = mon.check_output("cat /etc/prometheus/hostops-tls/scrape-password")
    assert get_from(mon, url, ca).startswith("401 ")
    assert get_from(mon, url, ca, "prometheus", "not-the-password-00").startswith("401 ")
    answer = get_from(mon, url, ca, "prometheus", password)
    assert answer.startswith("200 "), answer
    assert "# HELP" in answer


def test_configuration_passes_the_checkers(mon: Any) -> None:
    assert mon.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0
    assert mon.run("amtool check-config /etc/prometheus/alertmanager.yml").rc == 0
    check = mon.run(
        "prometheus-blackbox-exporter --config.check --config.file=/etc/prometheus/blackbox.yml"
    )
    assert check.rc == 0, check.stderr
    rules = mon.run("promtool check rules /etc/prometheus/rules/*.rules.yml")
    assert rules.rc == 0, rules.stdout
    # the thresholds of converge.yml reached the rules
    assert mon.file("/etc/prometheus/rules/hostops-alerts.rules.yml").contains("for: 30s")


def test_targets_file_carries_the_order(mon: Any) -> None:
    targets = mon.file(f"/etc/prometheus/hostops-targets/{FQDN}.yml")
    assert targets.mode == 0o640
    assert targets.group == "prometheus"
    groups = yaml.safe_load(targets.content_string)
    by_probe = {group["labels"]["__hostops_probe"]: group for group in groups}
    assert by_probe["icmp"]["targets"] == [ADDRESS]
    assert by_probe["node"]["targets"] == [f"{ADDRESS}:9100"]
    assert by_probe["http"]["targets"] == [f"http://{ADDRESS}:8080/"]
    assert by_probe["tcp"]["targets"] == [f"{ADDRESS}:22"]
    assert by_probe["tls"]["targets"] == [f"{ADDRESS}:9100"]
    for group in groups:
        assert group["labels"]["order"] == ORDER
        assert group["labels"]["level"] == "supervision"
        assert group["labels"]["contact_email"] == "claire@lemoine.example"
        assert group["labels"]["bandwidth_cap_mbps"] == "101"  # private cloud


def test_prometheus_shows_the_servers_targets_up() -> None:
    def all_up() -> dict[str, str] | None:
        health = {t["labels"]["job"]: t["health"] for t in targets_of(FQDN)}
        wanted = {"hostops-icmp", "hostops-node", "hostops-http", "hostops-tcp", "hostops-tls"}
        return health if set(health) == wanted and set(health.values()) == {"up"} else None

    wait_for("the five targets scraped", all_up, timeout=60)

    # a blackbox target is 'up' when the exporter answers: the probes themselves succeed
    def probes_succeed() -> dict[str, str] | None:
        results = query(f'probe_success{{server="{FQDN}"}}')
        values = {r["metric"]["job"]: r["value"][1] for r in results}
        wanted = {
            "hostops-icmp": "1",
            "hostops-http": "1",
            "hostops-tcp": "1",
            "hostops-tls": "1",
        }
        return values if values == wanted else None

    wait_for("the ping, HTTP, TCP and TLS probes succeeding", probes_succeed, timeout=60)


def test_certificate_expiry_is_read_and_alerted_on() -> None:
    """The TLS check reads the node exporter's real certificate: its expiry in Prometheus
    is the certificate's notAfter, and with converge's 800 days (the certificate has two
    years) TlsCertificateExpiresSoon fires; the rule's quiet cases are promtool unit tests
    (tests/unit/monitoring/certificates.test.yml)."""
    from cryptography import x509  # noqa: PLC0415 - ansible-core's dependency

    cert = x509.load_pem_x509_certificate((SECRETS / "hosts" / f"{MANAGED}.crt").read_bytes())
    expiry = cert.not_valid_after_utc.timestamp()
    found = wait_for(
        "the certificate's expiry",
        lambda: query(f'probe_ssl_earliest_cert_expiry{{job="hostops-tls",server="{FQDN}"}}'),
        timeout=60,
    )
    assert float(found[0]["value"][1]) == expiry
    firing = wait_for(
        "TlsCertificateExpiresSoon firing",
        lambda: query(
            f'ALERTS{{alertname="TlsCertificateExpiresSoon",server="{FQDN}",alertstate="firing"}}'
        ),
        timeout=90,
    )
    assert firing[0]["metric"]["instance"] == f"{ADDRESS}:9100"
    assert firing[0]["metric"]["audience"] == "ops"


def test_node_metrics_carry_the_orders_labels() -> None:
    series = wait_for("node_load1", lambda: query(f'node_load1{{server="{FQDN}"}}'), timeout=30)
    labels = series[0]["metric"]
    assert labels["order"] == ORDER
    assert labels["customer"] == "Transports Lemoine SAS"
    assert labels["level"] == "supervision"
    assert labels["contact_email"] == "claire@lemoine.example"
    # the RAID collector runs (here without arrays) and so does the textfile collector
    assert query(f'node_scrape_collector_success{{server="{FQDN}",collector="mdadm"}}')
    assert query(f'hostops_forbidden_services{{server="{FQDN}"}}')[0]["value"][1] == "0"
    cap = query(f'hostops_bandwidth_cap_mbps{{server="{FQDN}"}}')
    assert cap[0]["value"][1] == "101"
    assert wait_for(
        "the order's bandwidth",
        lambda: query(f'hostops_order:network_mbps:rate5m{{order="{ORDER}"}}'),
        timeout=30,
    )
    wait_for(
        "availability",
        lambda: query(f'hostops:availability:ratio_5m{{server="{FQDN}"}}'),
        timeout=30,
    )

    # every ping answered over the last 5 minutes: exactly 1. One probe lost under load
    # (5 s scrapes: 1 in 60) keeps it at 0.98 until that probe leaves the 5-minute window:
    # wait that long at most for the exact value
    seen: list[str] = []

    def all_answered() -> list[dict[str, Any]] | None:
        ratio = query(f'hostops:availability:ratio_5m{{server="{FQDN}"}}')
        seen.append(ratio[0]["value"][1] if ratio else "absent")
        return ratio if seen[-1] == "1" else None

    try:
        wait_for("availability 1", all_answered, timeout=330, every=5)
    except AssertionError as err:
        raise AssertionError(f"{err}; last values {seen[-5:]}") from None


def test_a_forbidden_service_raises_an_alert(mon: Any, managed: Any) -> None:
    with forbidden_check_timer_stopped(managed):
        _forbidden_service_raises_an_alert(mon, managed)
    wait_for(
        "the forbidden service gone",
        lambda: query(f'hostops_forbidden_services{{server="{FQDN}"}} == 0'),
        timeout=30,
    )


def _forbidden_service_raises_an_alert(mon: Any, managed: Any) -> None:
    managed.check_output("systemd-run --unit=hostops-test-irc python3 -m http.server 6667")
    try:
        wait_for("the test IRC port", lambda: managed.socket("tcp://0.0.0.0:6667").is_listening, 20)
        managed.check_output("systemctl start hostops-forbidden-services.service")
        assert managed.file(
            "/var/lib/prometheus/node-exporter/hostops_forbidden_services.prom"
        ).contains("^hostops_forbidden_services 1$")
        wait_for(
            "ForbiddenServiceDetected firing",
            lambda: query(
                f'ALERTS{{alertname="ForbiddenServiceDetected",server="{FQDN}",'
                'alertstate="firing"}'
            ),
            timeout=60,
        )
        # an ops matter: ops are told (the customer's contact is not: see below)
        wait_for("ops' email", lambda: mails(mon, OPS_MAILDIR, "ForbiddenServiceDetected"), 60)
    finally:
        managed.run("systemctl stop hostops-test-irc")
        managed.check_output("systemctl start hostops-forbidden-services.service")


def test_host_down_alert_reaches_the_contact(mon: Any) -> None:
    before = set(mails(mon, CONTACT_MAILDIR, "HostDown"))
    netns = f"{lab_id()}-{MANAGED}"
    subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "down"], check=True)
    start = time.monotonic()
    try:

        def host_down() -> list[dict[str, Any]]:
            alerts = api(9093, "/api/v2/alerts", filter='alertname="HostDown"')
            return [a for a in alerts if a["labels"].get("server") == FQDN]

        alerts = wait_for("HostDown in Alertmanager", host_down, timeout=120, every=1)
        delay = time.monotonic() - start
        # not before the configured delay, and soon after it (probe, scrape, evaluation)
        assert HOST_DOWN_FOR - 1 <= delay <= HOST_DOWN_FOR + 60, delay
        assert alerts[0]["labels"]["audience"] == "customer"
        assert alerts[0]["labels"]["contact_email"] == "claire@lemoine.example"
        assert {r["name"] for r in alerts[0]["receivers"]} == {"ops", "customer-contact"}
        messages = wait_for(
            "the email in the contact's mailbox",
            lambda: sorted(set(mails(mon, CONTACT_MAILDIR, "HostDown")) - before),
            timeout=60,
        )
        text = mon.file(messages[0]).content_string
        assert "To: claire@lemoine.example" in text
        assert FQDN in text
        # ops' copy is a delivery of its own, maybe a moment later
        wait_for("the email in ops' mailbox", lambda: mails(mon, OPS_MAILDIR, "HostDown"), 90)
        # ops' own alerts are not sent to the customer
        assert not mails(mon, CONTACT_MAILDIR, "ForbiddenServiceDetected")
    finally:
        subprocess.run(["ip", "-n", netns, "link", "set", "eth0", "up"], check=True)
    wait_for(
        "the server answering ping again",
        lambda: query(f'probe_success{{job="hostops-icmp",server="{FQDN}"}} == 1'),
        timeout=60,
    )


def test_deregistration_removes_the_targets_not_the_server(mon: Any, managed: Any) -> None:
    proc = hostops("monitor", "deregister", FQDN, "--inventory", str(INVENTORY), "--server", MON)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not mon.file(f"/etc/prometheus/hostops-targets/{FQDN}.yml").exists
    assert not mon.file(f"/var/lib/prometheus/node-exporter/hostops_registry_{FQDN}.prom").exists
    wait_for("no targets left", lambda: not targets_of(FQDN) or None, timeout=60)
    # isolation from monitoring: the server keeps running, untouched, and answers
    assert managed.service("prometheus-node-exporter").is_running
    password = mon.check_output("cat /etc/prometheus/hostops-tls/scrape-password")
    probe = get_from(
        mon,
        f"https://127.0.0.1:9115/probe?module=hostops_icmp&target={ADDRESS}",
        "/etc/prometheus/hostops-tls/ca.pem",
        "prometheus",
        password,
    )
    assert probe.startswith("200 "), probe
    assert "probe_success 1" in probe.splitlines()


BASIC_ORDER = """\
version: 1
order: BDC-2027-0191
customer:
  name: Cabinet Dupuis Architectes
  contact: {name: Paul Dupuis, phone: "+33 1 42 00 00 01", email: paul@dupuis.example}
service: dedicated_server
managed_level: basic
servers:
  - hostname: basic1.dupuis.example
backups: {enabled: false}
monitoring:
  http_checks: ["http://basic1.dupuis.example/"]
"""


def test_basic_level_gets_the_ping_probe_only(mon: Any, tmp_path: Path) -> None:
    order = tmp_path / "basic.yml"
    order.write_text(BASIC_ORDER)
    lab_vars = _LAB["lab"]["vars"]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "vars": lab_vars,
                    "children": {
                        "monitoring_servers": {"hosts": {MON: {"ansible_host": MON_ADDRESS}}},
                        "customers": {
                            "hosts": {"basic1.dupuis.example": {"ansible_host": ADDRESS}}
                        },
                    },
                }
            }
        )
    )
    proc = hostops(
        "monitor",
        "register",
        "basic1.dupuis.example",
        "--order",
        str(order),
        "--inventory",
        str(inventory),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    groups = yaml.safe_load(
        mon.file("/etc/prometheus/hostops-targets/basic1.dupuis.example.yml").content_string
    )
    assert [g["labels"]["__hostops_probe"] for g in groups] == ["icmp"]
    assert groups[0]["targets"] == [ADDRESS]
    assert groups[0]["labels"]["level"] == "basic"
    # the contract contacts a basic client when the server stops answering ping
    assert groups[0]["labels"]["contact_email"] == "paul@dupuis.example"

    def one_ping_target() -> list[dict[str, Any]] | None:
        found = targets_of("basic1.dupuis.example")
        ok = [t["labels"]["job"] for t in found] == ["hostops-icmp"] and found[0]["health"] == "up"
        return found if ok else None

    # discovered at once from the file (or at the file discovery's refresh, 1 min), then
    # up at its first scrape (every 30 s): 90 s at worst, more on a loaded machine
    wait_for("the ping target up", one_ping_target, timeout=120)
    wait_for(
        "the ping succeeding",
        lambda: query('probe_success{server="basic1.dupuis.example"} == 1'),
        timeout=60,
    )
    proc = hostops("monitor", "deregister", "basic1.dupuis.example", "--inventory", str(inventory))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_for("no targets left", lambda: not targets_of("basic1.dupuis.example") or None, 60)
