"""fail2ban on Debian 12 (alteo.hostops.fail2ban beside alteo.hostops.firewall).

Bookworm's fail2ban 1.0.2 reads the journal only with python3-systemd and, left to its
default backend, looks for an /var/log/auth.log these hosts do not have. Shown here:
the sshd jail reads OpenSSH's failures from the journal (the lab machine, never banned,
fails to log in and fail2ban's log names it as left alone), the nftables action puts a
banned address in fail2ban's own table beside the firewall's, the metric counts it, and
the ban ends after the (test-short) bantime of 20 s."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

METRICS = "/var/lib/prometheus/node-exporter/hostops_fail2ban.prom"
BANTIME = 20
SOURCE = "192.0.2.55"  # documentation range: a ban of an address that never connects


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def metric(host: Any, name: str, jail: str = "sshd") -> int | None:
    text = host.file(METRICS).content_string if host.file(METRICS).exists else ""
    match = re.search(rf'^{name}{{jail="{jail}"}} (\d+)$', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def test_fail2ban_1_0_reads_the_journal(host: Any) -> None:
    assert host.package("fail2ban").version.startswith("1.0.")
    assert host.package("python3-systemd").is_installed
    assert not host.file("/var/log/auth.log").exists  # no rsyslog: the journal only
    assert host.service("fail2ban").is_running
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd" in status
    # OpenSSH 9.2 has no penalties of its own: no exemption drop-in (9.2 would refuse it)
    assert not host.file("/etc/ssh/sshd_config.d/20-hostops-never-banned.conf").exists
    assert "persourcepenalties" not in host.check_output("sshd -T")


def test_the_sshd_jail_sees_failed_logins_of_a_never_banned_source(host: Any) -> None:
    lab_machine = host.check_output("printenv SSH_CONNECTION").split()[0]
    address = str(host.ansible.get_variables()["ansible_host"])
    ignored = f"grep -c 'Ignore {lab_machine} by ip' /var/log/fail2ban.log || true"
    before = int(host.check_output(ignored) or 0)
    for _ in range(4):
        subprocess.run(
            [
                "ssh",
                *("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"),
                *("-o", "UserKnownHostsFile=/dev/null", "-o", "ControlPath=none"),
                *("-o", "PubkeyAuthentication=no", "-o", "ConnectTimeout=15"),
                f"hostops-nosuchuser@{address}",
                "true",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    # every failure read from the journal (maxretry is 3) and none of them banned
    assert wait_for(lambda: int(host.check_output(ignored) or 0) >= before + 4, 20)
    assert lab_machine not in host.check_output("fail2ban-client status sshd")


def test_a_ban_goes_to_fail2bans_table_and_the_metric_then_ends(host: Any) -> None:
    host.check_output(f"fail2ban-client set sshd banip {SOURCE}")
    banned_at = time.monotonic()
    assert SOURCE in host.check_output("nft list set inet f2b-table addr-set-sshd")
    assert 'tcp dport 22 accept comment "ssh"' in host.check_output("nft list table inet hostops")
    assert wait_for(lambda: metric(host, "hostops_fail2ban_banned") == 1, 15)
    assert wait_for(lambda: SOURCE not in host.check_output("fail2ban-client status sshd"), 40)
    assert time.monotonic() - banned_at >= BANTIME - 5  # lifted by its time, not at once
    assert SOURCE not in host.check_output("nft list set inet f2b-table addr-set-sshd")
    assert wait_for(lambda: metric(host, "hostops_fail2ban_banned") == 0, 15)
