"""Helpers of the lab test modules (not a test module): the lab hosts a module owns, and
playbooks run on them the way an operator runs them.

``with owned_prefixes(cli, "req-"):`` in a module fixture: hosts left under those
prefixes by an earlier run are taken down first, and the module's hosts are taken down
afterwards, also when the fixture's setup fails half-way (a host booted, then a
playbook or a download failed) -- never anyone else's hosts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# Debian's apt timers run 'apt-get update' (and unattended upgrades where installed) at
# times of their own, soon after a fresh host's first boot too (Persistent=true): a
# test's own apt or dpkg command on the host would then find the lists or dpkg lock
# taken. Tests that run apt themselves stop them first on their own hosts (the stop
# waits for a run in progress to end).
QUIET_APT = (
    "systemctl stop apt-daily.timer apt-daily-upgrade.timer"
    " apt-daily.service apt-daily-upgrade.service"
)


@contextmanager
def owned_prefixes(cli: Callable[..., Any], *prefixes: str) -> Iterator[None]:
    for prefix in prefixes:
        cli("lab", "down", "--prefix", prefix, check=True)
    try:
        yield
    finally:
        for prefix in prefixes:
            cli("lab", "down", "--prefix", prefix, check=True)


def ansible_playbook(inventory: Path, playbook: str, *args: str) -> None:
    """``ansible-playbook -i INVENTORY playbooks/PLAYBOOK ARGS`` from the repository root;
    AssertionError with the end of its output when it fails."""
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{playbook}", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def monitoring_server(cli: Callable[..., Any], prefix: str, inventory: Path, *args: str) -> None:
    """Boot the lab host PREFIX1 as the group monitoring_servers of INVENTORY and set it up
    with playbooks/monitoring-server.yml (ARGS: more ansible-playbook arguments)."""
    cli(
        "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", prefix,
        "--inventory", str(inventory), "--group", "monitoring_servers", check=True,
    )  # fmt: skip
    ansible_playbook(inventory, "monitoring-server.yml", *args)
