"""Brute-force protection of the mail stack (alteo.hostops.fail2ban), on real IMAP logins.

The converge gives each host the jails its roles call for (playbooks/vars/fail2ban.yml):
the mailbox server sshd, SMTP AUTH, IMAP and the webmail, the transactional relay sshd
and SMTP AUTH. The relay (host 2) then guesses passwords over IMAPS on the mailbox
server (host 1) until the dovecot jail bans it: it can no longer connect to 993 or 143
while the lab machine still can, the textfile metric shows the ban, and after the
(test-short) bantime the relay connects again. The lab machine, never banned (as the
monitoring server and ops' sources), guesses as often: fail2ban reads its failures and
leaves it alone. The converge sets bantime 25 s, findtime 120 s, maxretry 3."""

from __future__ import annotations

import base64
import concurrent.futures
import imaplib
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "mail-trixie")
INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")) / "lab-hosts.yml"
METRICS = "/var/lib/prometheus/node-exporter/hostops_fail2ban.prom"
MAXRETRY = 3
BANTIME = 25
WRONG_USER = "nobody-here@lab-mail.example"

# Run on the attacking host: PARALLEL IMAPS logins with a wrong password at once (Dovecot
# delays each failure by seconds), each on its own connection; prints how many failed.
GUESSER = """
import concurrent.futures, imaplib, ssl, sys
address, user, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
def guess(_):
    try:
        client = imaplib.IMAP4_SSL(address, 993, timeout=30,
                                   ssl_context=ssl._create_unverified_context())
        client.login(user, "not-the-password")
    except imaplib.IMAP4.error:
        return 1
    except OSError:
        return 0
    return 0
with concurrent.futures.ThreadPoolExecutor(count) as pool:
    print(sum(pool.map(guess, range(count))))
"""


def get_host(name: str) -> Any:
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=str(INVENTORY))


@pytest.fixture(scope="module")
def mailbox() -> Any:
    return get_host(f"{SCENARIO}-1")


@pytest.fixture(scope="module")
def attacker() -> Any:
    return get_host(f"{SCENARIO}-2")


def address(host: Any) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def answers(addr: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def jails(host: Any) -> list[str]:
    listed = re.search(r"Jail list:\s*(.*)$", host.check_output("fail2ban-client status"), re.M)
    return sorted(name.strip() for name in listed.group(1).split(",")) if listed else []


def banned(host: Any, jail: str) -> list[str]:
    status = host.check_output(f"fail2ban-client status {jail}")
    match = re.search(r"Banned IP list:\s*(.*)$", status, re.MULTILINE)
    return match.group(1).split() if match else []


def metric(host: Any, name: str, jail: str) -> int | None:
    text = host.file(METRICS).content_string if host.file(METRICS).exists else ""
    match = re.search(rf'^{name}{{jail="{jail}"}} (\d+)$', text, re.MULTILINE)
    return int(match.group(1)) if match else None


def guess_from_here(addr: str, count: int) -> int:
    def guess(_: int) -> int:
        context = ssl._create_unverified_context()  # noqa: S323 - any certificate: a guesser
        try:
            client = imaplib.IMAP4_SSL(addr, 993, ssl_context=context, timeout=30)
            client.login(WRONG_USER, "not-the-password")
        except imaplib.IMAP4.error:
            return 1
        return 0

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return sum(pool.map(guess, range(count)))


def test_each_host_runs_the_jails_of_its_services(mailbox: Any, attacker: Any) -> None:
    assert jails(mailbox) == ["dovecot", "postfix-sasl", "roundcube-auth", "sshd"]
    assert jails(attacker) == ["postfix-sasl", "sshd"]  # the relay serves no mailbox
    for host in (mailbox, attacker):
        assert host.service("fail2ban").is_running
        assert "hostops_fail2ban_up 1" in host.file(METRICS).content_string


def test_the_never_banned_source_guessing_imap_passwords_is_not_banned(mailbox: Any) -> None:
    lab_machine = mailbox.check_output("printenv SSH_CONNECTION").split()[0]
    ignored = f"grep -c '\\[dovecot\\] Ignore {lab_machine} by ip' /var/log/fail2ban.log || true"
    before = int(mailbox.check_output(ignored) or 0)
    assert guess_from_here(address(mailbox), 2 * MAXRETRY) == 2 * MAXRETRY
    # fail2ban read the failures (its log names the source it leaves alone)...
    assert wait_for(lambda: int(mailbox.check_output(ignored) or 0) >= before + 2 * MAXRETRY, 30)
    # ...and banned nothing
    assert lab_machine not in banned(mailbox, "dovecot")
    assert answers(address(mailbox), 993)


def test_repeated_failed_imap_logins_get_a_lab_host_banned_then_let_in(
    mailbox: Any, attacker: Any
) -> None:
    target, source = address(mailbox), address(attacker)
    reach = "timeout 5 bash -c '</dev/tcp/{}/{}'"
    # positive control: the attacker reaches IMAP before it guesses
    assert attacker.run(reach.format(target, 993)).rc == 0
    assert source not in banned(mailbox, "dovecot")

    encoded = base64.b64encode(GUESSER.encode()).decode()
    guessed = attacker.check_output(
        f"echo {encoded} | base64 -d | python3 - {target} {WRONG_USER} {MAXRETRY + 1}"
    )
    assert guessed.split()[-1] == str(MAXRETRY + 1)  # every guess was refused by Dovecot
    assert wait_for(lambda: source in banned(mailbox, "dovecot"), 30), mailbox.check_output(
        "fail2ban-client status dovecot"
    )
    banned_at = time.monotonic()

    # banned from IMAP (both ports); the lab machine still gets in
    assert source in mailbox.check_output("nft list set inet f2b-table addr-set-dovecot")
    assert attacker.run(reach.format(target, 993)).rc != 0
    assert attacker.run(reach.format(target, 143)).rc != 0
    assert answers(target, 993)
    assert wait_for(lambda: metric(mailbox, "hostops_fail2ban_banned", "dovecot") == 1, 15)

    # lifted after bantime
    assert wait_for(lambda: source not in banned(mailbox, "dovecot"), BANTIME + 20)
    assert time.monotonic() - banned_at >= BANTIME - 5
    assert wait_for(lambda: attacker.run(reach.format(target, 993)).rc == 0, 10)
    assert wait_for(lambda: metric(mailbox, "hostops_fail2ban_banned", "dovecot") == 0, 15)
