"""Patch runs on real Debian 12 and 13 lab hosts put behind on purpose (needs root).

The story, in order (contract §4.1.1, §4.1.3): a Debian 12 host gets older nginx, apache2
and postgresql-15, a Debian 13 host older nginx and php8.4-fpm, each the oldest version
the archive offers besides the candidate (read from ``apt-cache madison`` now: versions
move). Then:

* ``hostops patch plan`` predicts the minor updates and the held majors, changing nothing;
* ``hostops patch run --at`` a Saturday exits non-zero and changes no package;
* ``hostops patch run --at`` a Tuesday morning upgrades nginx and apache2, holds
  postgresql-15 (15.x to 15.y: the 2nd digit changes, a major update by the contract's
  words) and reports both; on Debian 13 it upgrades nginx and php8.4-fpm; local
  configuration (apache2 moved to port 8080) is kept and the services answer;
* a second run changes nothing;
* an emergency run outside the window records its reason and writes the customer email;
* the client refuses one major and approves postgresql-15's: the command of the group's
  scheduled service (``hostops patch schedule``, units in a temporary directory) refuses
  with ``--at`` outside the window, and inside it upgrades postgresql-15 (with its own
  source's packages) and nothing else held, mails the report (a local SMTP sink) with
  the refusal, and a second run changes nothing.

If the archive no longer offers a version pair the story needs, the test fails and says
which (it never skips).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import json
import os
import re
import shlex
import socketserver
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import QUIET_APT, owned_prefixes

from hostops.module_utils.versions import classify_update, compare_versions

pytestmark = pytest.mark.lab

BOOKWORM = "patch-bookworm-1"
TRIXIE = "patch-trixie-1"
PREFIXES = {"bookworm": "patch-bookworm-", "trixie": "patch-trixie-"}
INSIDE = "2027-01-12T10:00:00+01:00"  # a Tuesday morning: the window is open
OUTSIDE = "2027-01-16T10:00:00+01:00"  # a Saturday: closed
# What each host is put behind on, and the class the archive's pair must have.
BEHIND = {
    BOOKWORM: {"nginx": "minor", "apache2": "minor", "postgresql-15": "major"},
    TRIXIE: {"nginx": "minor", "php8.4-fpm": "minor"},
}
# Health checks of the patch runs, and no reboot: a lab host is a container, which a
# reboot would stop for good (the reboot path is not exercised here).
HEALTH = """\
all:
  vars:
    patching_reboot: false
  hosts:
    patch-bookworm-1:
      patching_health_services: [nginx, apache2, postgresql]
      patching_http_checks: ["http://127.0.0.1/", {url: "http://127.0.0.1:8080/", status: 200}]
    patch-trixie-1:
      patching_health_services: [nginx, php8.4-fpm]
      patching_http_checks: ["http://127.0.0.1/"]
"""
# Start nothing while packages are installed (apache2 and nginx both want port 80).
NO_STARTS = (
    "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d"
)
AFTER_INSTALL = {
    BOOKWORM: (
        "sed -i 's/^Listen 80$/Listen 8080/' /etc/apache2/ports.conf"
        " && sed -i 's/<VirtualHost \\*:80>/<VirtualHost *:8080>/'"
        " /etc/apache2/sites-available/000-default.conf"
        " && systemctl restart apache2 nginx postgresql"
    ),
    TRIXIE: "systemctl restart nginx php8.4-fpm",
}
# Another package manager holding dpkg's lock (a POSIX lock, as apt's), started just
# before a patch run: the module waits for it instead of failing. The holder lets go only
# once another process has opened the lock file (inotify IN_OPEN: the module's wait polls
# it every second), plus 3 s, so the module has really waited whatever the machine's
# load; it gives up after 10 minutes. The shell returns once the lock is held.
HOLD_DPKG_LOCK = """\
import ctypes, fcntl, os, select, time
lock = "/var/lib/dpkg/lock-frontend"
held = open(lock, "w")
fcntl.lockf(held, fcntl.LOCK_EX)
libc = ctypes.CDLL(None, use_errno=True)
watch = libc.inotify_init()
libc.inotify_add_watch(watch, lock.encode(), 0x20)  # IN_OPEN
open("/run/hold-dpkg-lock.ready", "w").close()
if select.select([watch], [], [], 600)[0]:
    time.sleep(3)
"""
LOCK_HOLDER = (
    "rm -f /run/hold-dpkg-lock.ready"
    f" && cat > /run/hold-dpkg-lock.py <<'EOF'\n{HOLD_DPKG_LOCK}EOF\n"
    "setsid -f python3 /run/hold-dpkg-lock.py </dev/null >/dev/null 2>&1"
    " && for i in $(seq 100); do [ -e /run/hold-dpkg-lock.ready ] && break; sleep 0.1; done"
    " && [ -e /run/hold-dpkg-lock.ready ]"
)
INSTALLED = "dpkg-query -W -f '${Package} ${Version}\\n'"

Cli = Callable[..., Any]


def sh(cli: Cli, host: str, script: str) -> str:
    return str(cli("lab", "ssh", host, "--", script, check=True).stdout)


def offered_versions(madison: str) -> dict[str, list[str]]:
    """``apt-cache madison`` lines: ``nginx | 1.22.1-9+deb12u11 | http://... Packages``."""
    offered: dict[str, list[str]] = {}
    for line in madison.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2].endswith("Packages"):
            offered.setdefault(fields[0], []).append(fields[1])
    return offered


def put_behind(cli: Cli, host: str, wanted: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Install the oldest version the archive offers of each package (and of the packages
    built with it, at that same version); return {package: (old, candidate)}."""
    simulation = sh(
        cli,
        host,
        "apt-get update -qq && apt-get -s install --no-install-recommends " + " ".join(wanted),
    )
    candidates = dict(re.findall(r"^Inst (\S+) \((\S+) ", simulation, re.MULTILINE))
    offered = offered_versions(sh(cli, host, "apt-cache madison " + " ".join(candidates)))
    pairs: dict[str, tuple[str, str]] = {}
    problems = []
    for package, expected in wanted.items():
        candidate = candidates.get(package)
        if candidate is None:
            problems.append(f"{host}: {package} is not installable from the archive")
            continue
        older = [v for v in offered.get(package, []) if compare_versions(v, candidate) < 0]
        if not older:
            problems.append(
                f"{host}: the archive offers {package} {candidate} and no older version "
                f"(apt-cache madison: {offered.get(package)}): cannot put it behind"
            )
            continue
        old = min(older, key=cmp_to_key(compare_versions))
        found = classify_update(old, candidate)
        if found != expected:
            problems.append(
                f"{host}: the archive's pair for {package} is {old} -> {candidate}, a {found} "
                f"update; the test needs a {expected} one"
            )
        pairs[package] = (old, candidate)
    if problems:
        pytest.fail("version pairs missing from the archive:\n" + "\n".join(problems))
    # apache2-bin, nginx-common, php8.4-common, libpq5, ... at the same old version
    pins = {
        name: old
        for old, _candidate in pairs.values()
        for name in candidates
        if old in offered.get(name, [])
    }
    sh(
        cli,
        host,
        f"{NO_STARTS} && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
        " --no-install-recommends --allow-downgrades "
        + " ".join(f"{name}={version}" for name, version in sorted(pins.items()))
        + f"; status=$?; rm -f /usr/sbin/policy-rc.d; [ $status -eq 0 ] && {AFTER_INSTALL[host]}",
    )
    installed = packages(cli, host)
    for package, (old, _candidate) in pairs.items():
        assert installed[package] == old, f"{host}: {package} is {installed[package]}, not {old}"
    return pairs


def packages(cli: Cli, host: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in sh(cli, host, INSTALLED).splitlines())


def address(cli: Cli, host: str) -> str:
    status = cli("lab", "status", check=True).stdout
    return next(line.split()[2] for line in status.splitlines() if line.startswith(host + " "))


@pytest.fixture(scope="module")
def lab(
    cli: Cli, root_user: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Both hosts booted and put behind; the inventories of the patch runs."""
    folder = tmp_path_factory.mktemp("inventories")
    inventories = []
    with owned_prefixes(cli, *PREFIXES.values()):
        for release, prefix in PREFIXES.items():
            inventory = folder / f"{release}.yml"
            cli(
                "lab", "up", "--hosts", "1", "--release", release, "--prefix", prefix,
                "--inventory", str(inventory), "--group", "patch_targets", check=True,
            )  # fmt: skip
            inventories.append(inventory)
            sh(cli, f"{prefix}1", QUIET_APT)  # the tests' own apt and dpkg runs below
        health = folder / "health.yml"
        health.write_text(HEALTH)
        inventories.append(health)
        pairs: dict[str, dict[str, tuple[str, str]]] = {}
        failures: list[BaseException] = []

        def behind(host: str) -> None:
            try:
                pairs[host] = put_behind(cli, host, BEHIND[host])
            except BaseException as err:  # re-raised below, in the test's thread
                failures.append(err)

        threads = [threading.Thread(target=behind, args=(host,)) for host in BEHIND]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        yield {
            "inventory_args": [arg for p in inventories for arg in ("--inventory", str(p))],
            "pairs": pairs,
        }


def run_dirs(state_dir: Path, kind: str) -> list[Path]:
    return sorted((state_dir / "patch-runs").glob(f"*-{kind}"))


def report(run_dir: Path, host: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "reports" / f"{host}.json").read_text())
    return data


def entries(items: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {item["name"]: (item["from"], item["to"]) for item in items}


def test_plan_predicts_and_changes_nothing(cli: Cli, lab: dict[str, Any], state_dir: Path) -> None:
    before = {host: packages(cli, host) for host in BEHIND}
    proc = cli("patch", "plan", *lab["inventory_args"], "--serial", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WOULD APPLY" in proc.stdout
    assert {host: packages(cli, host) for host in BEHIND} == before
    [plan] = run_dirs(state_dir, "plan")
    bookworm = report(plan, BOOKWORM)["result"]
    assert bookworm is not None and report(plan, BOOKWORM)["check_mode"] is True
    pairs = lab["pairs"][BOOKWORM]
    assert entries(bookworm["applied"])["nginx"] == pairs["nginx"]
    assert entries(bookworm["applied"])["apache2"] == pairs["apache2"]
    assert "postgresql-15" not in entries(bookworm["applied"])
    assert {h["name"]: h["reason"] for h in bookworm["held"]}["postgresql-15"] == "major"


def test_outside_the_window_the_run_refuses_and_changes_no_package(
    cli: Cli, lab: dict[str, Any], state_dir: Path
) -> None:
    before = {host: packages(cli, host) for host in BEHIND}
    proc = cli("patch", "run", *lab["inventory_args"], "--at", OUTSIDE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the maintenance window is closed (weekend (Saturday)" in proc.stderr
    assert "nothing was changed on 2 host(s)" in proc.stderr
    assert {host: packages(cli, host) for host in BEHIND} == before
    assert run_dirs(state_dir, "run") == []


def test_inside_the_window_minor_updates_are_applied_and_majors_held(
    cli: Cli, lab: dict[str, Any], state_dir: Path
) -> None:
    proc = cli("patch", "run", *lab["inventory_args"], "--at", INSIDE, "--serial", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [run] = run_dirs(state_dir, "run")

    # Debian 12: nginx and apache2 upgraded, postgresql-15 held as major
    pairs = lab["pairs"][BOOKWORM]
    installed = packages(cli, BOOKWORM)
    assert installed["nginx"] == pairs["nginx"][1]
    assert installed["apache2"] == pairs["apache2"][1]
    assert installed["postgresql-15"] == pairs["postgresql-15"][0]
    bookworm = report(run, BOOKWORM)
    assert bookworm["status"] == "ok" and bookworm["window_open"] is True
    applied = entries(bookworm["result"]["applied"])
    assert applied["nginx"] == pairs["nginx"]
    assert applied["apache2"] == pairs["apache2"]
    held = {h["name"]: h for h in bookworm["result"]["held"]}
    assert held["postgresql-15"]["reason"] == "major"
    assert (held["postgresql-15"]["from"], held["postgresql-15"]["to"]) == pairs["postgresql-15"]
    assert bookworm["result"]["failed"] == []

    # Debian 13: nginx and php8.4-fpm upgraded
    pairs = lab["pairs"][TRIXIE]
    installed = packages(cli, TRIXIE)
    assert installed["nginx"] == pairs["nginx"][1]
    assert installed["php8.4-fpm"] == pairs["php8.4-fpm"][1]
    assert entries(report(run, TRIXIE)["result"]["applied"])["php8.4-fpm"] == pairs["php8.4-fpm"]

    # the summary for ops: a row per host, the majors listed for planning
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("HOST "))
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : header + 3]}
    assert rows[BOOKWORM][1] == "ok" and rows[TRIXIE][1] == "ok"
    assert int(rows[BOOKWORM][3]) >= 1  # HELD (MAJOR)
    assert "Major updates held, to plan with the client" in proc.stdout
    old, new = lab["pairs"][BOOKWORM]["postgresql-15"]
    assert f"  {BOOKWORM}  postgresql-15 {old} -> {new}" in proc.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["window"]["open"] is True
    assert summary["run"]["window"]["decided_for"] == INSIDE

    # local configuration kept (apache2 still on 8080), and the services answer
    assert "Listen 8080" in sh(cli, BOOKWORM, "cat /etc/apache2/ports.conf")
    for url in (f"http://{address(cli, BOOKWORM)}:8080/", f"http://{address(cli, TRIXIE)}/"):
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - lab address
            assert response.status == 200


def test_a_second_run_changes_nothing(cli: Cli, lab: dict[str, Any], state_dir: Path) -> None:
    before = {host: packages(cli, host) for host in BEHIND}
    proc = cli("patch", "run", *lab["inventory_args"], "--at", INSIDE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "patch run done: 0 change(s)" in proc.stdout
    # the default rolling batches: one server, then the next batch: the progress lines
    # (time, host, result, task) come host by host, never interleaved
    hosts = [line.split()[1] for line in proc.stdout.splitlines() if re.match(r"\d\d:\d\d:", line)]
    runs = [host for i, host in enumerate(hosts) if i == 0 or hosts[i - 1] != host]
    assert sorted(runs) == sorted(BEHIND), runs
    assert {host: packages(cli, host) for host in BEHIND} == before
    second = run_dirs(state_dir, "run")[-1]
    for host in BEHIND:
        assert report(second, host)["result"]["applied"] == []
    held = {h["name"]: h["reason"] for h in report(second, BOOKWORM)["result"]["held"]}
    assert held["postgresql-15"] == "major"  # still waiting for the client


def test_an_emergency_outside_the_window_records_why_and_writes_the_email(
    cli: Cli, lab: dict[str, Any], state_dir: Path
) -> None:
    """Also: a dpkg run left unfinished is completed, and a held dpkg lock is waited for."""
    sh(
        cli,
        TRIXIE,
        "cd /tmp && apt-get download -q nginx-common && dpkg --unpack nginx-common_*.deb"
        " && rm nginx-common_*.deb",
    )
    assert "nginx-common" in sh(cli, TRIXIE, "dpkg --audit")
    sh(cli, TRIXIE, LOCK_HOLDER)
    reason = "CVE-2027-0001: remote code execution in nginx"
    proc = cli(
        "patch", "run", *lab["inventory_args"], "--at", OUTSIDE, "--limit", TRIXIE,
        "--emergency", "--reason", reason, "--contact", "ops@alixans-lab.example",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    emergency = run_dirs(state_dir, "run")[-1]
    record = json.loads((emergency / "run.json").read_text())
    assert record["emergency"] is True and record["emergency_reason"] == reason
    assert record["window"]["open"] is False and record["hosts"] == [TRIXIE]
    trixie = report(emergency, TRIXIE)
    assert trixie["emergency"] is True and trixie["emergency_reason"] == reason
    assert trixie["result"]["dpkg_repaired"] is True
    assert trixie["result"]["lock_wait_seconds"] > 0
    assert sh(cli, TRIXIE, "dpkg --audit") == ""
    assert not (emergency / "reports" / f"{BOOKWORM}.json").exists()
    message = email.message_from_bytes(
        (emergency / "emergency-notice-1.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, email.message.EmailMessage)
    assert message["To"] == "ops@alixans-lab.example"
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert f"Motif : {reason}" in body and TRIXIE in body


# -- majors by agreement, through the scheduled run (issue 19) ---------------------------


class _Sink(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive the scheduled run's report (the relay ops configure)."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 relay.lab ESMTP\r\n")
        lines: list[bytes] = []
        in_data = False
        while line := self.rfile.readline():
            if in_data:
                if line == b".\r\n":
                    server.messages.append(b"".join(lines))
                    lines, in_data = [], False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def service_command(unit: Path) -> tuple[list[str], dict[str, str]]:
    """The scheduled service's ExecStart and Environment, as systemd would run them."""
    argv: list[str] = []
    environment: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        name, _, value = line.partition("=")
        if name == "ExecStart":
            argv = shlex.split(value)
        elif name == "Environment":
            variable, _, setting = shlex.split(value)[0].partition("=")
            environment[variable] = setting
    return argv, environment


def test_a_scheduled_run_applies_the_approved_major_only_inside_the_window(
    cli: Cli, lab: dict[str, Any], state_dir: Path, tmp_path: Path
) -> None:
    """postgresql-15 stayed held without the client's agreement (above); approved, the
    scheduled service's command refuses outside the window and applies it inside, with
    the packages of its own source (libpq5, postgresql-client-15 at the same version: apt
    needs them together) and nothing else held; the refusal of another major is in the
    report mailed; a second run changes nothing."""
    old, new = lab["pairs"][BOOKWORM]["postgresql-15"]
    before = packages(cli, BOOKWORM)
    assert before["postgresql-15"] == old  # held until now
    inventories = lab["inventory_args"]
    proc = cli(
        "patch", "refuse", *inventories, "--host", BOOKWORM, "--package", "ca-certificates",
        "--reference", "mail of 2027-01-05", "--by", "ops-test",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli(
        "patch", "approve", *inventories, "--host", BOOKWORM, "--package", "postgresql-15",
        "--reference", "ticket 4711", "--by", "ops-test",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    agreements = json.loads((state_dir / "patch-agreements.json").read_text())["agreements"]
    approval = agreements[f"{BOOKWORM}/postgresql-15"]
    assert approval["decision"] == "approved" and approval["status"] == "pending"
    assert approval["by"] == "ops-test" and approval["reference"] == "ticket 4711"

    relay: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Sink)
    relay.messages = []
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    saved = {name: os.environ.get(name) for name in ("HOSTOPS_SMTP_HOST", "HOSTOPS_SMTP_PORT")}
    os.environ.update(HOSTOPS_SMTP_HOST="127.0.0.1", HOSTOPS_SMTP_PORT=str(relay.server_address[1]))
    try:
        units = tmp_path / "units"
        units.mkdir()
        proc = cli(
            "patch", "schedule", "--group", "patch_targets", "--at", "10:30", "--days", "Mon-Fri",
            *inventories, "--contact", "client@alixans-lab.example", "--unit-dir", str(units),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        timer = units / "hostops-patch-patch_targets.timer"
        service = units / "hostops-patch-patch_targets.service"
        assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 10:30:00 Europe/Paris" in timer.read_text()
        argv, environment = service_command(service)
        assert argv[1:3] == ["patch", "run"] and "--mail-report" in argv
        assert environment["HOSTOPS_STATE_DIR"] == str(state_dir)
        env = {**os.environ, **environment}

        # outside the window: refused, nothing changed, no run recorded
        runs_before = run_dirs(state_dir, "run")
        outside = subprocess.run(
            [*argv, "--at", OUTSIDE],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert outside.returncode == 1, outside.stdout + outside.stderr
        assert "the maintenance window is closed" in outside.stderr
        assert packages(cli, BOOKWORM)["postgresql-15"] == old
        assert run_dirs(state_dir, "run") == runs_before

        # inside: the approved major applied, and only it
        inside = subprocess.run(
            [*argv, "--at", INSIDE],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert inside.returncode == 0, inside.stdout + inside.stderr
    finally:
        relay.shutdown()
        relay.server_close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    after = packages(cli, BOOKWORM)
    assert after["postgresql-15"] == new
    # nothing else held: only postgresql-15 and its own source's packages changed
    changed = {name for name, version in after.items() if before.get(name) != version}
    assert "postgresql-15" in changed
    assert changed <= {"postgresql-15", "libpq5", "postgresql-client-15"}, changed
    assert after.get("ca-certificates") == before.get("ca-certificates")
    run = run_dirs(state_dir, "run")[-1]
    bookworm = report(run, BOOKWORM)["result"]
    [applied] = [entry for entry in bookworm["applied"] if entry["name"] == "postgresql-15"]
    assert (applied["from"], applied["to"], applied["approved_major"]) == (old, new, True)
    assert {a["name"]: a["outcome"] for a in bookworm["approved"]} == {"postgresql-15": "applied"}
    assert "postgresql-15" not in {h["name"] for h in bookworm["held"]}
    agreements = json.loads((state_dir / "patch-agreements.json").read_text())["agreements"]
    approval = agreements[f"{BOOKWORM}/postgresql-15"]
    assert approval["status"] == "applied" and approval["applied_version"] == new
    assert f"{BOOKWORM}  ca-certificates  REFUSED" in inside.stdout
    assert f"{BOOKWORM}  postgresql-15  APPROVED to the candidate, applied ({new}" in inside.stdout
    summary = json.loads((run / "summary.json").read_text())
    kinds = {(m["kind"], m["package"]) for m in summary["majors"] if m["host"] == BOOKWORM}
    assert ("refused", "ca-certificates") in kinds and ("approved", "postgresql-15") in kinds

    # the report mailed to the customer: its servers, the applied major, the refusal
    [sent] = relay.messages
    message = email.message_from_bytes(sent, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    assert message["To"] == "client@alixans-lab.example"
    body = message.get_body().get_content()  # type: ignore[union-attr]
    assert f"postgresql-15 {old} -> {new} (mise à jour majeure approuvée)" in body
    assert "ca-certificates (réf. mail of 2027-01-05)" in body
    assert (run / "report-mail-1.eml").exists()

    # the services still answer, and a second run changes nothing (the approval expired)
    assert "active" in sh(cli, BOOKWORM, "systemctl is-active postgresql@15-main")
    proc = cli("patch", "run", *inventories, "--at", INSIDE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "patch run done: 0 change(s)" in proc.stdout
    assert packages(cli, BOOKWORM) == after
    second = report(run_dirs(state_dir, "run")[-1], BOOKWORM)["result"]
    assert second["approved"] == [] and second["applied"] == []
