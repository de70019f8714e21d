"""The monitoring agent (alteo.hostops.monitoring_agent), checked on the converged host:
the node exporter answering with the RAID and textfile collectors, the textfile
directory publishing what hostops writes there, and the forbidden services check
finding a real listener and a real process."""

from __future__ import annotations

import json
import time
from typing import Any

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


def metrics(host: Any) -> list[str]:
    out = host.check_output(
        "python3 -c 'import sys, urllib.request; "
        'sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:9100/metrics").read().decode())\''
    )
    return out.splitlines()


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
    assert flags.contains("--collector.mdadm")
    assert flags.contains(f"--collector.textfile.directory={TEXTFILE_DIR}")
    lines = metrics(host)
    # the mdadm collector is enabled (this lab host has no arrays: it reports failure)
    assert any(
        line.startswith('node_scrape_collector_success{collector="mdadm"}') for line in lines
    )
    assert "node_textfile_scrape_error 0" in lines


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
    assert fact == {"textfile_dir": TEXTFILE_DIR, "listen_address": ":9100"}


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
