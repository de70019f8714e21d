"""The host firewall (alteo.hostops.firewall), checked from outside: the lab machine,
where the verifier runs, connects to the converged host like any other client.

Listeners are started on the host on opened and unopened ports; only the openings
answer, a source-limited opening answers its source only, loopback and ping pass, the
rule set survives in the files nftables.service loads at boot. Last, two rule sets that
would lock Ansible out: one refused before anything changes, one (with the refusal
turned off) loaded, rolled back by the timer, SSH working again."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")) / "lab-hosts.yml"
CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
RULES = "/etc/nftables.d/hostops.nft"
LISTENERS = {8080: True, 40005: True, 9101: True, 9102: False, 8081: False}


def address(host: Any) -> str:
    return str(host.ansible.get_variables()["ansible_host"])


def answers(addr: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def pings(addr: str) -> bool:
    """An ICMP echo request answered (a raw socket: the lab machine has no ping)."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(2)
        header = struct.pack("!BBHHH", 8, 0, 0, 0x4F57, 1) + b"hostops"
        padded = header + b"\0" * (len(header) % 2)
        words = sum(struct.unpack(f"!{len(padded) // 2}H", padded))
        words = (words >> 16) + (words & 0xFFFF)
        checksum = ~(words + (words >> 16)) & 0xFFFF
        sock.sendto(header[:2] + struct.pack("!H", checksum) + header[4:], (addr, 0))
        try:
            while True:
                packet, (source, _) = sock.recvfrom(1024)
                icmp = packet[(packet[0] & 0x0F) * 4 :]
                if source == addr and icmp[0] == 0 and icmp[4:6] == b"\x4f\x57":
                    return True
        except TimeoutError:
            return False


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def converge(host: Any, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    name = str(host.ansible.get_variables()["inventory_hostname"])
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--inventory",
            str(INVENTORY),
            "--limit",
            name,
            *extra,
            str(CONVERGE),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def listeners(host: Any) -> Iterator[None]:
    for port in LISTENERS:
        host.run(f"systemctl stop hostops-test-{port}")
        host.check_output(
            f"systemd-run --unit=hostops-test-{port} python3 -m http.server -b :: {port}"
        )
    host.check_output(
        "for i in $(seq 50); do [ $(ss -Htln | grep -cE ':(8080|40005|9101|9102|8081) ') = 5 ]"
        " && exit 0; sleep 0.2; done; exit 1"
    )
    yield
    for port in LISTENERS:
        host.run(f"systemctl stop hostops-test-{port}")


def test_nftables_is_enabled_and_loads_the_rules_at_boot(host: Any) -> None:
    service = host.service("nftables")
    assert service.is_enabled
    assert service.is_running  # a oneshot that stays active
    conf = host.file("/etc/nftables.conf")
    assert conf.contains('include "/etc/nftables.d/\\*.nft"')
    assert not conf.contains("^flush ruleset")  # other tables (fail2ban's) are left alone
    rules = host.file(RULES)
    assert (rules.user, rules.group, rules.mode) == ("root", "root", 0o644)
    assert rules.contains("policy drop")
    # what the kernel has is what the file says
    assert host.run(f"nft -c -f {RULES}").rc == 0
    live = host.check_output("nft list table inet hostops")
    assert "policy drop" in live
    assert 'tcp dport 22 accept comment "ssh"' in live
    assert 'tcp dport 40000-40010 accept comment "passive"' in live
    assert 'ip saddr 192.0.2.0/24 tcp dport 9102 accept comment "elsewhere"' in live
    assert 'ip6 saddr 2001:db8::/32 tcp dport 9101 accept comment "lab-machine"' in live
    assert 'udp dport 53 accept comment "dns"' in live
    assert "packet-too-big" in live
    assert "nd-neighbor-solicit" in live


@pytest.mark.usefixtures("listeners")
@pytest.mark.parametrize(("port", "expected"), sorted(LISTENERS.items()))
def test_only_the_openings_answer_from_outside(host: Any, port: int, expected: bool) -> None:
    assert answers(address(host), port) is expected
    # the listener is there: loopback is never filtered
    local = f"python3 -c 'import socket; socket.create_connection((\"::1\", {port}), 2)'"
    assert host.run(local).rc == 0


@pytest.mark.usefixtures("listeners")
def test_an_open_port_serves_and_ssh_and_ping_pass(host: Any) -> None:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"http://{address(host)}:8080/", timeout=5) as response:
        assert response.status == 200
    assert answers(address(host), 22)
    assert pings(address(host))


def test_the_openings_are_published(host: Any) -> None:
    fact = host.ansible("setup", "filter=ansible_local")["ansible_facts"]["ansible_local"]
    names = [rule["name"] for rule in fact["firewall"]["openings"]]
    assert names == ["ssh", "web", "passive", "lab-machine", "elsewhere", "dns"]


def test_a_rule_set_that_locks_ops_out_is_refused(host: Any) -> None:
    before = host.file(RULES).sha256sum
    live = host.check_output("nft list table inet hostops")
    proc = converge(host, "--extra-vars", '{"firewall_ssh_sources": ["192.0.2.1"]}')
    assert proc.returncode != 0
    assert "Refused: the rule set would not let in SSH from" in output(proc), output(proc)[-3000:]
    assert "Nothing was changed." in output(proc)
    assert host.file(RULES).sha256sum == before
    assert host.check_output("nft list table inet hostops") == live


def test_a_rule_set_that_cuts_ansible_off_is_rolled_back(host: Any) -> None:
    before = host.file(RULES).sha256sum
    proc = converge(
        host,
        "--extra-vars",
        '{"firewall_ssh_sources": ["192.0.2.1"], "firewall_refuse_lockout": false,'
        ' "firewall_confirm_timeout": 5, "firewall_rollback_seconds": 20}',
    )
    assert proc.returncode != 0
    assert "cut Ansible off" in output(proc), output(proc)[-3000:]
    assert "rolled back automatically" in output(proc), output(proc)[-3000:]
    # SSH works again, from a new connection; the table and the file are the old ones
    assert answers(address(host), 22)
    live = host.check_output("nft list table inet hostops")
    assert 'tcp dport 22 accept comment "ssh"' in live
    assert "192.0.2.1" not in live
    assert host.file(RULES).sha256sum == before
    timer = host.run("systemctl is-active hostops-firewall-rollback.timer")
    assert timer.stdout.strip() != "active"
    # the next ordinary run finds the rules in force as they should be: nothing to load
    again = converge(host)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "Arm the rollback" not in again.stdout
