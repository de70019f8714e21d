"""The monitoring agent (alteo.hostops.monitoring_agent), checked on the converged host:
the node exporter answering over TLS to the scrape user only, with the RAID and textfile
collectors, the textfile directory publishing what hostops writes there, and the
forbidden services check finding a real listener and a real process.

The node exporter is scraped from the lab machine (the monitoring server's stand-in,
which the host firewall lets in) with the certificate of the monitoring CA and the scrape
password that converge made on the controller (playbooks/vars/monitoring.yml)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
SECRETS = (
    Path(
        os.environ.get("HOSTOPS_STATE_DIR")
        or Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "state"
    )
    / "monitoring"
)


def scrape(
    host: Any, user: str | None = "prometheus", password: str | None = None
) -> tuple[int, str]:
    """GET https://HOST:9100/metrics from here, trusting the monitoring CA only; the
    status and the body (an error's status and body too)."""
    address = str(host.ansible.get_variables()["ansible_host"])
    context = ssl.create_default_context(cafile=str(SECRETS / "ca.crt"))
    request = urllib.request.Request(f"https://{address}:9100/metrics")
    if user is not None:
        if password is None:
            password = (SECRETS / "scrape-password").read_text().strip()
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def metrics(host: Any) -> list[str]:
    status, body = scrape(host)
    assert status == 200, body
    return body.splitlines()


def run_check(host: Any) -> list[str]:
    """A run of the check started now. With its timer (every 5 minutes) running, 'systemctl
    start' of the oneshot could join a run already under way, whose result was computed
    before the test started its listener: the timer is stopped, the run under way left to
    end (bounded), and the timer started again after."""
    unit = "hostops-forbidden-services.service"
    host.check_output("systemctl stop hostops-forbidden-services.timer")
    try:
        deadline = time.monotonic() + 60
        while True:
            state = host.run(f"systemctl is-active {unit}").stdout.strip()
            jobs = host.run(f"systemctl list-jobs --no-legend {unit}").stdout.strip()
            if state not in ("active", "activating", "deactivating") and not jobs:
                break
            assert time.monotonic() < deadline, f"{unit} still {state} after 60s"
            time.sleep(1)
        host.check_output(f"systemctl start {unit}")
        prom = host.file(f"{TEXTFILE_DIR}/hostops_forbidden_services.prom").content_string
    finally:
        host.run("systemctl start hostops-forbidden-services.timer")
    return prom.splitlines()


def test_node_exporter_runs_with_the_raid_and_textfile_collectors(host: Any) -> None:
    service = host.service("prometheus-node-exporter")
    assert service.is_running
    assert service.is_enabled
    assert (
        host.socket("tcp://0.0.0.0:9100").is_listening or host.socket("tcp://:::9100").is_listening
    )
    flags = host.file("/etc/default/prometheus-node-exporter")
    assert flags.contains("--web.config.file=/etc/prometheus-node-exporter/web.yml")
    assert flags.contains("--collector.mdadm")
    assert flags.contains(f"--collector.textfile.directory={TEXTFILE_DIR}")
    lines = metrics(host)
    # the mdadm collector is enabled (this lab host has no arrays: it reports failure)
    assert any(
        line.startswith('node_scrape_collector_success{collector="mdadm"}') for line in lines
    )
    assert "node_textfile_scrape_error 0" in lines


def test_node_exporter_answers_the_scrape_user_over_tls_only(host: Any) -> None:
    # positive control: the scrape user with its password, over TLS, trusting the CA
    status, body = scrape(host)
    assert status == 200
    assert "node_load1 " in body
    # no credentials, or a wrong password: refused, and no metrics given
    for user, password in ((None, None), ("prometheus", "not-the-password-0000")):
        status, body = scrape(host, user, password)
        assert status == 401, (user, status)
        assert "node_load1" not in body
    # plain HTTP: no metrics either (the exporter speaks TLS only and says so)
    address = str(host.ansible.get_variables()["ansible_host"])
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"http://{address}:9100/metrics", timeout=10)
    assert plain.value.code == 400
    assert "HTTPS server" in plain.value.read().decode()
    # the web configuration keeps a bcrypt hash, never the password, and only root and
    # the exporter's group read it
    web = host.file("/etc/prometheus-node-exporter/web.yml")
    assert web.mode == 0o640
    assert web.group == "prometheus"
    password = (SECRETS / "scrape-password").read_text().strip()
    assert password not in web.content_string
    assert "prometheus: $2b$" in web.content_string
    assert host.file("/etc/prometheus-node-exporter/key.pem").mode == 0o640
    # the controller keeps the secrets root-only
    assert (SECRETS / "scrape-password").stat().st_mode & 0o777 == 0o600
    assert (SECRETS / "ca.key").stat().st_mode & 0o777 == 0o600
    assert SECRETS.stat().st_mode & 0o777 == 0o700


def test_textfile_directory_publishes_hostops_metrics(host: Any) -> None:
    directory = host.file(TEXTFILE_DIR)
    assert directory.is_directory
    assert directory.user == "root"
    assert directory.mode == 0o755
    path = f"{TEXTFILE_DIR}/hostops_molecule_test.prom"
    host.check_output(
        f"printf 'hostops_molecule_test_value 42\\n' > {path}.tmp && mv {path}.tmp {path}"
    )
    try:
        assert "hostops_molecule_test_value 42" in metrics(host)
    finally:
        host.run(f"rm -f {path}")


def test_local_fact_names_the_directory(host: Any) -> None:
    fact = json.loads(host.file("/etc/ansible/facts.d/monitoring_agent.fact").content_string)
    assert fact == {"textfile_dir": TEXTFILE_DIR, "listen_address": ":9100", "scheme": "https"}


def test_forbidden_services_check_is_scheduled_and_clean(host: Any) -> None:
    timer = host.service("hostops-forbidden-services.timer")
    assert timer.is_enabled
    assert timer.is_running
    lines = run_check(host)
    assert "hostops_forbidden_services 0" in lines
    assert "hostops_forbidden_services 0" in metrics(host)


def test_forbidden_services_check_finds_an_irc_daemon(host: Any) -> None:
    # a listener on the IRC TLS port, and a process named like an IRC daemon
    host.check_output("systemd-run --unit=hostops-test-port python3 -m http.server 6697")
    host.check_output("cp /bin/sleep /tmp/ngircd")
    host.check_output("systemd-run --unit=hostops-test-proc /tmp/ngircd 600")
    try:
        host.check_output(
            "for i in $(seq 50); do ss -Htln 'sport = :6697' | grep -q . && exit 0;"
            " sleep 0.2; done; exit 1"
        )
        lines = run_check(host)
        assert "hostops_forbidden_services 2" in lines
        assert 'hostops_forbidden_service{kind="irc",evidence="port 6697/tcp listening"} 1' in lines
        assert 'hostops_forbidden_service{kind="irc",evidence="process ngircd"} 1' in lines
        assert "hostops_forbidden_services 2" in metrics(host)
    finally:
        host.run("systemctl stop hostops-test-port hostops-test-proc; rm -f /tmp/ngircd")
    assert "hostops_forbidden_services 0" in run_check(host)
