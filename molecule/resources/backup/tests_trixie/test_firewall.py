"""The backup host's firewall (issue 14): restic's REST server answers the servers it
backs up (A and B, servers of the inventory) and no other host; SSH stays open to ops.

The outsider is this controller: it reaches the backup host over SSH (the positive control
from the same place) but is not a server the backup host serves. Each refusal stands
beside a connection that must work: A and B reach the REST port, the controller reaches
SSH.
"""

from __future__ import annotations

import socket
from typing import Any

import yaml
from backup_helpers import BACKUP_HOST, INVENTORY

_HOSTS = yaml.safe_load(open(INVENTORY).read())["all"]["children"]["lab"]["hosts"]  # noqa: SIM115
BACKUP_ADDRESS = _HOSTS[BACKUP_HOST]["ansible_host"]
REST_PORT = 8000  # backup_server_port (roles/backup_server/defaults/main.yml)
CONNECT = (
    "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])),"
    " timeout=5).close()' {} {}"
)


def connects(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=5).close()
    except OSError:
        return False
    return True


def test_the_served_servers_reach_the_rest_server(host: Any, other: Any) -> None:
    for server in (host, other):
        result = server.run(CONNECT.format(BACKUP_ADDRESS, REST_PORT))
        assert result.rc == 0, result.stderr


def test_another_host_gets_ssh_but_not_the_rest_server() -> None:
    assert connects(BACKUP_ADDRESS, 22)  # positive control from the same host
    assert not connects(BACKUP_ADDRESS, REST_PORT)


def test_the_rest_server_rule_has_sources_and_the_rest_is_dropped(backup_host: Any) -> None:
    table = backup_host.check_output("nft list table inet hostops")
    rest = [line.strip() for line in table.splitlines() if 'comment "backup-rest"' in line]
    assert rest and all(line.startswith("ip saddr ") for line in rest), table
    assert "policy drop" in table
