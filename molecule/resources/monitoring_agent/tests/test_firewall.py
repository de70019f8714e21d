"""The host firewall in front of the agent on Debian 12 (alteo.hostops.firewall; the
role's own scenario, firewall-trixie, covers it in full on Debian 13): the rule set
loaded and kept for boot, the node exporter answering its one source (the lab machine,
where the verifier runs), a port without an opening dropped."""

from __future__ import annotations

import socket
from typing import Any


def answers(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=2):
            return True
    except OSError:
        return False


def test_the_rule_set_is_loaded_and_kept_for_boot(host: Any) -> None:
    assert host.service("nftables").is_enabled
    live = host.check_output("nft list table inet hostops")
    assert "policy drop" in live
    assert 'tcp dport 9100 accept comment "node-exporter"' in live
    assert host.run("nft -c -f /etc/nftables.conf").rc == 0


def test_only_the_openings_answer_from_outside(host: Any) -> None:
    address = str(host.ansible.get_variables()["ansible_host"])
    host.run("systemctl stop hostops-test-9101")
    host.check_output("systemd-run --unit=hostops-test-9101 python3 -m http.server 9101")
    try:
        host.check_output(
            "for i in $(seq 50); do ss -Htln 'sport = :9101' | grep -q . && exit 0;"
            " sleep 0.2; done; exit 1"
        )
        assert answers(address, 22)
        assert answers(address, 9100)
        assert not answers(address, 9101)
    finally:
        host.run("systemctl stop hostops-test-9101")
