"""Brute-force protection (alteo.hostops.fail2ban) beside the firewall, on real SSH logins.

Host 2 of the scenario fails to log in to host 1 (an unknown user, as a password guesser
would) until host 1's sshd jail bans it: host 2 can no longer connect to port 22 while
the lab machine still can, the ban is in fail2ban's nftables table beside the firewall's,
the node exporter's textfile shows it, and after the (test-short) bantime host 2 gets in
again. The lab machine, in fail2ban_ignore as the monitoring server would be, fails as
often and more, and fail2ban sees its failures (its log says so) yet never bans it.
The converge sets bantime 25 s, findtime 120 s, maxretry 3, metrics every 5 s."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra

INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")) / "lab-hosts.yml"
ATTACKER = "firewall-trixie-2"
METRICS = "/var/lib/prometheus/node-exporter/hostops_fail2ban.prom"
MAXRETRY = 3
# Failed logins from the never-banned lab machine: more than sshd's penalties allow
# (OpenSSH 10: 1 s per login that never authenticates, refused past 15 s)
PENALISED = 20
BANTIME = 25


def address(host: Any) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def answers(addr: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 1.0) -> bool:
    """Whether *condition* came true within *timeout* seconds (checked every *step*)."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


SSH = (
    "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    " -o ConnectTimeout=15 -o ControlPath=none"
)


def failed_login_command(target: str) -> str:
    """One SSH login as a user that does not exist: sshd logs 'Invalid user ... from'."""
    return f"{SSH} -o PubkeyAuthentication=no hostops-nosuchuser@{target} true"


def key_login_command(host: Any) -> list[str]:
    """A new SSH connection as Ansible's, with the lab's key (no shared control socket)."""
    key = host.ansible.get_variables()["ansible_ssh_private_key_file"]
    return [*SSH.split(), "-i", str(key), f"root@{address(host)}", "true"]


def banned(host: Any, jail: str = "sshd") -> list[str]:
    status = host.check_output(f"fail2ban-client status {jail}")
    match = re.search(r"Banned IP list:\s*(.*)$", status, re.MULTILINE)
    return match.group(1).split() if match else []


def metric(host: Any, name: str, jail: str = "sshd") -> int | None:
    text = host.file(METRICS).content_string if host.file(METRICS).exists else ""
    match = re.search(rf'^{name}{{jail="{jail}"}} (\d+)$', text, re.MULTILINE)
    return int(match.group(1)) if match else None


@pytest.fixture(scope="module")
def attacker() -> Any:
    return testinfra.get_host(f"ansible://{ATTACKER}?ansible_inventory={INVENTORY}")


def test_fail2ban_runs_the_sshd_jail_with_nftables(host: Any) -> None:
    assert host.service("fail2ban").is_enabled
    assert host.service("fail2ban").is_running
    assert host.service("hostops-fail2ban-metrics.timer").is_enabled
    jail = host.file("/etc/fail2ban/jail.d/hostops.local")
    assert (jail.user, jail.group, jail.mode) == ("root", "root", 0o644)
    assert jail.contains("^banaction = nftables-multiport$")
    assert "Jail list:\tsshd" in host.check_output("fail2ban-client status")
    status = host.check_output("fail2ban-client status sshd")
    # OpenSSH 10 logs failed logins from sshd-session: Debian's own match misses them
    assert "_COMM=sshd-session" in status
    assert metric(host, "hostops_fail2ban_banned") is not None
    assert "hostops_fail2ban_up 1" in host.file(METRICS).content_string


def test_a_never_banned_source_failing_as_often_is_not_banned(host: Any) -> None:
    lab_machine = host.check_output("printenv SSH_CONNECTION").split()[0]
    log = "/var/log/fail2ban.log"
    ignored = f"grep -c 'Ignore {lab_machine} by ip' {log} || true"
    before = int(host.check_output(ignored) or 0)
    # OpenSSH 10 refuses, on its own, a source whose logins keep failing (about 15 of
    # these, PerSourcePenalties): the role exempts the never-banned addresses there too
    assert f"persourcepenaltyexemptlist 127.0.0.0/8,::1,{lab_machine}," in host.check_output(
        "sshd -T"
    )
    # each login must reach sshd's user check ("Permission denied"): on a loaded lab
    # machine a connection can time out before it, and count for nothing; sshd must
    # never drop one (what its penalty does: "kex_exchange_identification")
    refused, dropped = 0, []
    for _ in range(PENALISED + MAXRETRY):
        attempt = subprocess.run(
            failed_login_command(address(host)).split(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        refused += "Permission denied" in attempt.stderr
        dropped += [attempt.stderr] if "kex_exchange_identification" in attempt.stderr else []
        if refused == PENALISED:
            break
    assert (refused, dropped) == (PENALISED, [])

    def seen() -> int:
        return int(host.check_output(ignored) or 0) - before

    # fail2ban read the failures, many more than ban another source (its log names the
    # source it leaves alone: one line for each failure it read)...
    sshd_logged = f"journalctl -u ssh --since -5min | grep -c 'user .* {lab_machine}' || true"
    assert wait_for(lambda: seen() > 2 * MAXRETRY, 60), (
        seen(),
        host.check_output(sshd_logged),
        host.check_output(f"tail -n 20 {log}"),
    )
    # ...and banned nothing: the lab machine still logs in (a new connection, with its
    # key), nothing in the jail's list
    assert lab_machine not in banned(host)
    login = subprocess.run(
        key_login_command(host),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    assert host.run(f"nft list set inet f2b-table addr-set-sshd | grep -F {lab_machine}").rc != 0


def test_repeated_failed_ssh_logins_get_a_lab_host_banned_then_let_in(
    host: Any, attacker: Any
) -> None:
    target, source = address(host), address(attacker)
    reach = f"timeout 5 bash -c '</dev/tcp/{target}/22'"
    # positive control: the attacker reaches SSH before it fails to log in
    assert attacker.run(reach).rc == 0
    assert source not in banned(host)
    total_before = metric(host, "hostops_fail2ban_banned_total") or 0

    for _ in range(MAXRETRY + 1):
        # ssh fails (exit 255, which testinfra takes for its own failure): end in 0
        attacker.run(failed_login_command(target) + " || true")
    assert wait_for(lambda: source in banned(host), 20), host.check_output(
        "fail2ban-client status sshd"
    )
    banned_at = time.monotonic()

    # the attacker can no longer connect to 22; the lab machine still can
    assert attacker.run(reach).rc != 0
    assert answers(target, 22)
    # the ban is in fail2ban's own table, the firewall's table is untouched beside it
    assert source in host.check_output("nft list set inet f2b-table addr-set-sshd")
    assert 'tcp dport 22 accept comment "ssh"' in host.check_output("nft list table inet hostops")
    # monitoring sees it (the timer refreshes the textfile every 5 s)
    assert wait_for(lambda: metric(host, "hostops_fail2ban_banned") == 1, 15), host.file(
        METRICS
    ).content_string
    assert (metric(host, "hostops_fail2ban_banned_total") or 0) >= total_before + 1

    # the ban is lifted after bantime: the attacker gets in again, the metric drops to 0
    assert wait_for(lambda: source not in banned(host), BANTIME + 20)
    assert time.monotonic() - banned_at >= BANTIME - 5
    assert wait_for(lambda: attacker.run(reach).rc == 0, 10)
    assert wait_for(lambda: metric(host, "hostops_fail2ban_banned") == 0, 15)
