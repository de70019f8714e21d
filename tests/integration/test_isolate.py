"""A compromised server cut off, a bandwidth cap after notice, outbound IRC blocked (issue
19), on three Debian 13 lab hosts (needs root).

- ``iso-1``, the server: nginx and Postfix installed plainly (they serve 80 and 25), and
  iperf3;
- ``iso-2``, the monitoring server: its probes are TCP connections to the server;
- ``iso-3``, somebody else on the network: it connects to the server, holds the
  customer contact's mailbox (Postfix delivering to a local Maildir: the emails of
  ``hostops isolate`` and ``bandwidth notify`` are sent there) and runs the iperf3 server.

One story, in order: before anything, everything connects (the positive control);
``hostops isolate`` (no host firewall yet) leaves ops' SSH (this machine) and the
monitoring's probes working while HTTP, SMTP and SSH from iso-3 and anything the server
opens to iso-3 fail, records it on the host and in the state directory, mails the contact,
and changes nothing the second time; ``hostops release`` brings back the rule set as it
was and every connection. Then the host firewall (roles/firewall) is put on the server:
outbound IRC (6667) to iso-3 is refused while another port (8080) connects, and isolate
and release work on top of it, leaving its table as it was. Last, ``bandwidth cap``
refuses before the notice is 72 hours old, and with ``--at`` 72 hours later iperf3 from
the server shows the cap (within 10%, against an uncapped run first); ``release`` lifts it.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import QUIET_APT, owned_prefixes

from hostops.lab.nspawn import LabPaths

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFIX = "iso-"
SERVER, MON, OTHER = f"{PREFIX}1", f"{PREFIX}2", f"{PREFIX}3"
CONTACT = "luc@client.example"
MAILDIR = "/home/luc/Maildir/new"
CAP_MBPS = 20


def postfix(mailname: str, extra: str = "") -> str:
    return " && ".join(
        [
            QUIET_APT,
            "apt-get update -q -o DPkg::Lock::Timeout=300",
            "echo 'postfix postfix/main_mailer_type select Internet Site' | debconf-set-selections",
            f"echo 'postfix postfix/mailname string {mailname}' | debconf-set-selections",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends"
            f" -o DPkg::Lock::Timeout=300 postfix iperf3 {extra}",
            "postconf -e inet_interfaces=all inet_protocols=ipv4",
        ]
    )


# a TCP connection from a lab host: 'open' or 'closed' (refused or no answer in 4 s)
PROBE = (
    "python3 -c 'import socket,sys\n"
    "try:\n"
    ' socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close(); print("open")\n'
    'except OSError: print("closed")\' '
)


def connects(cli: Any, source: str, address: str, port: int) -> bool:
    proc = cli("lab", "ssh", source, "--", f"{PROBE} {address} {port}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip() == "open"


def ssh(cli: Any, host: str, command: str) -> str:
    proc = cli("lab", "ssh", host, "--", command)
    assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    return str(proc.stdout)


def changed(output: str, host: str) -> int:
    """The CHANGED column of the run's summary table for HOST."""
    row = next(line.split() for line in output.splitlines() if line.startswith(f"{host} "))
    return int(row[2])


def mails(cli: Any, needle: str) -> list[str]:
    out = ssh(cli, OTHER, f"mkdir -p {MAILDIR} && grep -l -r -F -- '{needle}' {MAILDIR} || true")
    return sorted(out.split())


def wait_for_mail(cli: Any, needle: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = mails(cli, needle)
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"no message holding {needle!r} in {CONTACT}'s mailbox")


def message_id(folder: Path, pattern: str) -> str:
    """The Message-ID of the newest email hostops kept under FOLDER (its .eml copy)."""
    newest = sorted(folder.glob(pattern))[-1]
    message = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    return str(message["Message-ID"]).strip("<>")


def throughput(cli: Any, lab: dict[str, str]) -> float:
    """Mbit/s the server sends to iso-3 (iperf3, 6 s, the first second left out)."""
    out = ssh(cli, SERVER, f"iperf3 -c {lab[OTHER]} -t 6 -O 1 -J")
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e6


def ruleset(cli: Any) -> str:
    return ssh(cli, SERVER, "nft list ruleset 2>/dev/null || true")


def address(cli: Any, name: str) -> str:
    status = cli("lab", "status", check=True).stdout
    return next(line.split()[2] for line in status.splitlines() if line.startswith(f"{name} "))


@pytest.fixture(scope="module")
def lab(cli: Any, root_user: None, state_dir: Path) -> Iterator[dict[str, str]]:
    with owned_prefixes(cli, PREFIX):
        cli("lab", "up", "--hosts", "3", "--release", "trixie", "--prefix", PREFIX, check=True)
        found = {name: address(cli, name) for name in (SERVER, MON, OTHER)}
        ssh(cli, SERVER, postfix("server.lab", "nginx-light"))
        ssh(cli, SERVER, "systemctl restart postfix")
        ssh(
            cli,
            OTHER,
            " && ".join(
                [
                    postfix("other.lab"),
                    "postconf -e 'mydestination=$myhostname, localhost, client.example'"
                    " home_mailbox=Maildir/",
                    "(id luc || useradd --create-home --shell /usr/sbin/nologin luc)",
                    "systemctl restart postfix",
                    "iperf3 -s -D",
                    # listeners for the IRC check: an IRC port and an ordinary one
                    "systemd-run --unit=irc-listen python3 -m http.server 6667",
                    "systemd-run --unit=web-listen python3 -m http.server 8080",
                ]
            ),
        )
        # positive control of the mailbox: a message sent from here arrives
        with smtplib.SMTP(found[OTHER], 25, timeout=30) as smtp:
            smtp.sendmail("ops@alteo.example", [CONTACT], b"Subject: lab control\r\n\r\nok\r\n")
        wait_for_mail(cli, "Subject: lab control")
        saved = {k: os.environ.get(k) for k in ("HOSTOPS_SMTP_HOST", "HOSTOPS_SMTP_PORT")}
        os.environ.update(HOSTOPS_SMTP_HOST=found[OTHER], HOSTOPS_SMTP_PORT="25")
        try:
            yield found
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def isolate(cli: Any, *more: str) -> subprocess.CompletedProcess[str]:
    proc = cli(
        "isolate", SERVER, "--lab", "--monitoring-server", MON,
        "--reason", "compromis : envoi de spam", "--contact", CONTACT, *more,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def release(cli: Any) -> subprocess.CompletedProcess[str]:
    proc = cli("release", SERVER, "--lab", "--contact", CONTACT, "--no-send")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def assert_open(cli: Any, lab: dict[str, str]) -> None:
    """Everything connects: the positive control, and what release must bring back."""
    for port in (80, 25, 22):
        assert connects(cli, OTHER, lab[SERVER], port), f"iso-3 -> server:{port}"
    assert connects(cli, MON, lab[SERVER], 80)
    assert connects(cli, SERVER, lab[OTHER], 25), "server -> iso-3:25"


def assert_isolated(cli: Any, lab: dict[str, str]) -> None:
    for port in (80, 25, 22):
        assert not connects(cli, OTHER, lab[SERVER], port), f"iso-3 -> server:{port} still open"
    assert not connects(cli, SERVER, lab[OTHER], 25), "the server still reaches iso-3:25"
    # kept: the monitoring's probes, and ops' SSH (a new session from this machine)
    assert connects(cli, MON, lab[SERVER], 80)
    assert connects(cli, MON, lab[SERVER], 25)
    assert ssh(cli, SERVER, "echo ops-in").strip() == "ops-in"


def test_isolate_without_a_firewall(cli: Any, lab: dict[str, str], state_dir: Path) -> None:
    assert_open(cli, lab)
    before = ruleset(cli)
    proc = isolate(cli)
    assert_isolated(cli, lab)
    fact = json.loads(ssh(cli, SERVER, "cat /etc/ansible/facts.d/hostops_isolation.fact"))
    assert fact["isolated"] is True
    assert fact["last"]["reason"] == "compromis : envoi de spam"
    assert ssh(cli, SERVER, "systemctl is-enabled hostops-isolate.service").strip() == "enabled"
    events = (state_dir / "isolation" / SERVER / "events.jsonl").read_text().splitlines()
    last = json.loads(events[-1])
    assert (last["action"], last["ok"], last["reason"]) == ("isolate", True, fact["last"]["reason"])
    assert last["by"] and last["at"]
    assert "sent to luc@client.example" in proc.stdout
    wait_for_mail(cli, message_id(state_dir / "isolation" / SERVER, "runs/*-isolate/isolate.eml"))
    # a second isolation changes nothing, and --no-send sends nothing
    again = isolate(cli, "--no-send")
    assert changed(again.stdout, SERVER) == 0, again.stdout
    assert "not sent" in again.stdout

    out = release(cli)
    assert changed(out.stdout, SERVER) > 0
    assert ruleset(cli) == before
    assert_open(cli, lab)
    fact = json.loads(ssh(cli, SERVER, "cat /etc/ansible/facts.d/hostops_isolation.fact"))
    assert fact["isolated"] is False
    assert fact["previous"]["action"] == "isolate"
    assert changed(release(cli).stdout, SERVER) == 0


def test_irc_blocked_and_isolation_over_the_firewall(cli: Any, lab: dict[str, str]) -> None:
    playbook = ROOT / "tests" / "integration" / "isolate-firewall.yml"
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"), "-i", str(LabPaths.default().inventory),
            str(playbook), "-e", f"hostops_test_host={SERVER}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # IRC out is refused; an ordinary port on the same host connects (the control)
    assert connects(cli, SERVER, lab[OTHER], 8080)
    assert not connects(cli, SERVER, lab[OTHER], 6667)
    assert "irc" in ssh(cli, SERVER, "nft list chain inet hostops output")

    assert_open(cli, lab)
    before = ssh(cli, SERVER, "nft list table inet hostops")
    isolate(cli, "--no-send")
    assert_isolated(cli, lab)
    release(cli)
    assert ssh(cli, SERVER, "nft list table inet hostops") == before
    assert "hostops_isolate" not in ruleset(cli)
    assert_open(cli, lab)


def test_bandwidth_cap_after_notice(cli: Any, lab: dict[str, str], state_dir: Path) -> None:
    uncapped = throughput(cli, lab)
    assert uncapped > 3 * CAP_MBPS, f"the uncapped control run gave {uncapped:.1f} Mbit/s"
    notified = datetime.now(UTC)
    proc = cli("bandwidth", "notify", SERVER, "--mbps", str(CAP_MBPS), "--contact", CONTACT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_for_mail(cli, message_id(state_dir / "bandwidth" / SERVER, "notices/*.eml"))

    early = cli("bandwidth", "cap", SERVER, "--lab")
    assert early.returncode == 1, early.stdout + early.stderr
    assert "refused" in early.stderr
    assert "tbf" not in ssh(cli, SERVER, "tc qdisc show")

    later = (notified + timedelta(hours=72, minutes=1)).isoformat()
    proc = cli("bandwidth", "cap", SERVER, "--lab", "--at", later)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tbf" in ssh(cli, SERVER, "tc qdisc show")
    capped = throughput(cli, lab)
    assert abs(capped - CAP_MBPS) <= 0.1 * CAP_MBPS, f"capped at {capped:.1f} Mbit/s"
    again = cli("bandwidth", "cap", SERVER, "--lab", "--at", later)
    assert again.returncode == 0 and changed(again.stdout, SERVER) == 0, again.stdout

    proc = cli("bandwidth", "release", SERVER, "--lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tbf" not in ssh(cli, SERVER, "tc qdisc show")
    released = throughput(cli, lab)
    assert released > 3 * CAP_MBPS, f"after release: {released:.1f} Mbit/s"
