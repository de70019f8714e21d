"""The lab: real Debian hosts under systemd-nspawn, reached over SSH (needs root)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_helpers import QUIET_APT

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# These tests take their lab down whole, so they run a lab of their own (its own id,
# bridge, subnet, state and inventory) beside the one the other tests use.
LAB_ID = "labtest"
SUBNET = "172.29.78.0/24"
INVENTORY = ROOT / "inventories" / "lab" / f"hosts-{LAB_ID}.yml"
STATE = Path(f"/var/lib/hostops-lab-{LAB_ID}")


@pytest.fixture(autouse=True, scope="module")
def own_lab() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSTOPS_LAB_ID", LAB_ID)
        patch.setenv("HOSTOPS_LAB_SUBNET", SUBNET)
        yield


def lab_leftovers() -> list[str]:
    """Whatever the lab makes that could be left behind: processes, namespaces, links."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmdline.startswith("systemd-nspawn") and f"{STATE}/" in cmdline:
            found.append(f"process {pid}: {cmdline[:80]}")
        if cmdline.startswith("apt-cacher-ng") and f"{STATE}/" in cmdline:
            found.append(f"process {pid}: {cmdline[:80]}")
    netns = Path("/run/netns")
    if netns.exists():
        found += [f"netns {n.name}" for n in netns.iterdir() if n.name.startswith(f"{LAB_ID}-")]
    found += [
        f"link {n.name}"
        for n in Path("/sys/class/net").iterdir()
        if n.name.startswith(f"{LAB_ID}-")
    ]
    return found


def ansible_ping(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible"), "-i", str(INVENTORY), "all", "-m", "ansible.builtin.ping"],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
        env={**os.environ, **env},
    )  # fmt: skip


def live_masters(directory: Path) -> dict[str, str]:
    """The SSH masters answering on the sockets of DIRECTORY: socket name -> ssh -O check's
    answer (which names the master's PID)."""
    found = {}
    for socket in sorted(directory.glob("*")) if directory.is_dir() else []:
        check = subprocess.run(
            ["ssh", "-O", "check", "-o", f"ControlPath={socket}", "lab-host"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if check.returncode == 0:
            found[socket.name] = check.stderr.strip()
    return found


def logins(cli: Any, host: str) -> int:
    """How many SSH logins the lab host's journal has recorded (this count's own too)."""
    count = cli(
        "lab", "ssh", host, "--",
        "journalctl --sync && journalctl -o cat | grep -c 'Accepted publickey for root'",
    )  # fmt: skip
    assert count.returncode == 0, count.stdout + count.stderr
    return int(count.stdout.strip())


def wait_for_masters(directory: Path, count: int, timeout: float = 30.0) -> bool:
    """Whether the masters left answering come down to COUNT within TIMEOUT seconds (a
    master ends when its host's SSH server closes the connection)."""
    deadline = time.monotonic() + timeout
    while len(live_masters(directory)) != count:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_refuses_when_not_root(cli: Any) -> None:
    """Run as an unprivileged user: a clear refusal, not a traceback."""
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            str(BIN / "hostops"),
            "lab",
            "up",
        ],
        capture_output=True,
        text=True,
        cwd=str(ROOT.parent),
        check=False,
        env={**os.environ, "HOSTOPS_ROOT": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr
    assert "must run as root" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_up_ping_down_leaves_nothing(cli: Any, root_user: None, tmp_path: Path) -> None:
    cli("lab", "down", check=True)
    assert lab_leftovers() == []

    # booted by a process with a strict umask (as a test worker may have): the files every
    # user of the host reads must still be readable (a 0600 /etc/hosts breaks PostgreSQL)
    up = subprocess.run(
        ["/bin/sh", "-c", f'umask 077 && exec "{BIN}/hostops" lab up --hosts 2'],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=900,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.count("trixie") >= 2
    inventory = yaml.safe_load(INVENTORY.read_text())
    hosts = inventory["all"]["children"]["lab"]["hosts"]
    assert sorted(hosts) == ["trixie1", "trixie2"]
    assert hosts["trixie1"]["ansible_host"] != hosts["trixie2"]["ansible_host"]

    # 'up' again is idempotent: same hosts, same processes
    status_before = cli("lab", "status", check=True).stdout
    cli("lab", "up", "--hosts", "2", check=True)
    assert cli("lab", "status", check=True).stdout == status_before

    # Under the repository's strategy (Mitogen), SSH gets the ControlPath the stock ssh
    # connection would give it: each host's first connection stays as a master, the next
    # run opens its session on it (the same master, no new login on the host), a run under
    # the stock strategy too (the same socket), and a reset stops the master (the next
    # connection is a new one, as after the stock connection's reset)
    masters = tmp_path / "cp"
    with_masters = {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(masters)}
    ping = ansible_ping(with_masters)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("pong") == 2
    first = live_masters(masters)
    assert len(first) == 2, first
    before = logins(cli, "trixie1")
    for strategy in ("alteo.hostops.mitogen_linear", "linear"):
        ping = ansible_ping({**with_masters, "ANSIBLE_STRATEGY": strategy})
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert live_masters(masters) == first, strategy
    assert logins(cli, "trixie1") == before + 1  # the count's own login only
    # without ControlPersist in SSH's options (the control): no master (and no directory
    # made), a login of its own
    before = logins(cli, "trixie1")
    bare = ansible_ping(
        {"ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "none"),
         "ANSIBLE_SSH_ARGS": "-o ServerAliveInterval=15"}
    )  # fmt: skip
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert bare.stdout.count("pong") == 2
    assert not (tmp_path / "none").exists()
    assert logins(cli, "trixie1") == before + 2
    playbook = tmp_path / "reset.yml"
    playbook.write_text(
        "- hosts: trixie1\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.ping:\n    - ansible.builtin.meta: reset_connection\n"
        "    - ansible.builtin.ping:\n"
    )
    before = logins(cli, "trixie1")
    reset = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(playbook)],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120,
        env={**os.environ, **with_masters},
    )  # fmt: skip
    assert reset.returncode == 0, reset.stdout + reset.stderr
    after = live_masters(masters)
    assert sorted(after) == sorted(first)
    assert [after[name] == first[name] for name in sorted(first)].count(True) == 1, after
    assert logins(cli, "trixie1") == before + 2  # the new master's login, and the count's
    # each host is a real systemd system with its own name and the release's apt sources
    who = cli(
        "lab",
        "ssh",
        "trixie2",
        "--",
        "systemctl is-system-running; hostname -f; . /etc/os-release; echo $VERSION_CODENAME",
    )
    assert who.returncode == 0, who.stderr
    assert who.stdout.split() == ["running", "trixie2.lab.alixans.example", "trixie"]
    modes = cli(
        "lab", "ssh", "trixie2", "--",
        "stat -c '%a %n' /etc/hosts /etc/hostname /etc/resolv.conf /etc/apt/sources.list.d/*"
        " && su -s /bin/sh nobody -c 'getent hosts localhost' >/dev/null && echo resolved",
    )  # fmt: skip
    assert modes.returncode == 0, modes.stdout + modes.stderr
    assert modes.stdout.split() == [
        "644", "/etc/hosts", "644", "/etc/hostname", "644", "/etc/resolv.conf",
        "644", "/etc/apt/sources.list.d/debian.sources", "resolved",
    ]  # fmt: skip

    # a host leaving does not cut the others off the apt cache (the bridge keeps its MAC)
    cli("lab", "down", "trixie1", check=True)
    assert wait_for_masters(masters, 1), live_masters(masters)  # trixie1's left with it
    update = cli(
        "lab", "ssh", "trixie2", "--", f"{QUIET_APT}; apt-get update -o Acquire::Retries=0"
    )
    assert update.returncode == 0, update.stdout + update.stderr

    down = cli("lab", "down", check=True)
    assert "trixie2" in down.stdout
    assert lab_leftovers() == []
    assert not INVENTORY.exists()
    assert wait_for_masters(masters, 0), live_masters(masters)


def test_recovers_from_a_crashed_host(cli: Any, root_user: None) -> None:
    """A host whose nspawn process died (a crash) is cleaned up and booted again by 'up'."""
    cli("lab", "up", "--hosts", "1", "--prefix", "crash", check=True)
    state = yaml.safe_load((STATE / "state.json").read_text())
    pid = state["hosts"]["crash1"]["pid"]
    os.kill(pid, 9)
    status = cli("lab", "status", check=True).stdout
    assert "dead" in status
    cli("lab", "up", "--hosts", "1", "--prefix", "crash", check=True)
    state = yaml.safe_load((STATE / "state.json").read_text())
    assert state["hosts"]["crash1"]["pid"] != pid
    alive = cli("lab", "ssh", "crash1", "--", "systemctl is-system-running")
    assert alive.stdout.strip() == "running"
    cli("lab", "down", "crash1", check=True)


def test_bad_arguments_exit_2(cli: Any) -> None:
    proc = cli("lab", "up", "--hosts", "0")
    assert proc.returncode == 2
    assert "--hosts: 0 is out of range" in proc.stderr
    proc = cli("lab", "up", "--release", "sid")
    assert proc.returncode == 2
    proc = cli("lab", "ssh", "nosuchhost")
    assert proc.returncode == 2
    assert "nosuchhost" in proc.stderr
