"""A rolling patch run stops at the batch that fails its health check (issue 19).

Four plain Debian 13 lab hosts, each put behind on one small package (the oldest version
the archive offers of the first of ``SMALL`` that has an older minor version: read from
``apt-cache madison`` now, versions move). The second host has a health check that
cannot pass: a service that must be active and does not exist. A run with one host per
batch (``--serial 1``) inside the window then:

* patches the first host (the positive control: the run did patch);
* fails the second on its health check before the update: not patched;
* stops there: the third and fourth hosts are not touched (every package version the
  same as before), and the summary says "not run" for them;
* exits 1, and the report names the failed host and the check (the unit).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import pytest
from lab_helpers import QUIET_APT, owned_prefixes

from hostops.module_utils.versions import classify_update, compare_versions

pytestmark = pytest.mark.lab

PREFIX = "roll-"
HOSTS = [f"{PREFIX}{i}" for i in range(1, 5)]
FAILING = HOSTS[1]
ABSENT_UNIT = "hostops-health-probe-absent"
INSIDE = "2027-01-12T10:00:00+01:00"  # a Tuesday morning: the window is open
# Small packages with no service, tried in turn; the first with an older minor version
# offered is put behind.
SMALL = ("login.defs", "libzstd1", "tzdata")
INSTALLED = "dpkg-query -W -f '${Package} ${Version}\\n'"
# All four hosts, in order: Ansible's batches follow the order in which the inventories
# first name the hosts, and this file may be read first.
HEALTH = f"""\
all:
  vars:
    patching_reboot: false
  hosts:
    {HOSTS[0]}: {{}}
    {FAILING}:
      patching_health_services: [{ABSENT_UNIT}]
    {HOSTS[2]}: {{}}
    {HOSTS[3]}: {{}}
"""

Cli = Callable[..., Any]


def sh(cli: Cli, host: str, script: str) -> str:
    return str(cli("lab", "ssh", host, "--", script, check=True).stdout)


def packages(cli: Cli, host: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in sh(cli, host, INSTALLED).splitlines())


def behind_pair(cli: Cli, host: str) -> tuple[str, str, str]:
    """(package, oldest offered, candidate) for the first of SMALL that can be put behind."""
    tried = []
    for package in SMALL:
        policy = sh(cli, host, f"apt-cache policy {package}")
        candidate = next(line.split()[1] for line in policy.splitlines() if "Candidate:" in line)
        madison = sh(cli, host, f"apt-cache madison {package}")
        offered = {line.split("|")[1].strip() for line in madison.splitlines() if "|" in line}
        older = [v for v in offered if compare_versions(v, candidate) < 0]
        if older:
            old = min(older, key=cmp_to_key(compare_versions))
            if classify_update(old, candidate) == "minor":
                return package, old, candidate
        tried.append(f"{package}: candidate {candidate}, offered {sorted(offered)}")
    pytest.fail("no small package with an older minor version in the archive:\n" + "\n".join(tried))


@pytest.fixture(scope="module")
def lab(
    cli: Cli, root_user: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("rolling")
    inventory = folder / "hosts.yml"
    health = folder / "health.yml"
    health.write_text(HEALTH)
    with owned_prefixes(cli, PREFIX):
        cli(
            "lab", "up", "--hosts", "4", "--release", "trixie", "--prefix", PREFIX,
            "--inventory", str(inventory), "--group", "rolling",
        check=True)  # fmt: skip
        sh(cli, HOSTS[0], f"{QUIET_APT} && apt-get update -qq")
        package, old, candidate = behind_pair(cli, HOSTS[0])
        failures: list[BaseException] = []

        def put_behind(host: str) -> None:
            try:
                sh(
                    cli,
                    host,
                    f"{QUIET_APT} && apt-get update -qq && DEBIAN_FRONTEND=noninteractive"
                    f" apt-get install -y -q --allow-downgrades {package}={old}",
                )
            except BaseException as err:  # re-raised below, in the test's thread
                failures.append(err)

        threads = [threading.Thread(target=put_behind, args=(host,)) for host in HOSTS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        yield {
            "inventory_args": ["--inventory", str(inventory), "--inventory", str(health)],
            "package": package,
            "pair": (old, candidate),
        }


def test_the_run_stops_at_the_batch_that_fails_its_health_check(
    cli: Cli, lab: dict[str, Any], state_dir: Path
) -> None:
    package, (old, candidate) = lab["package"], lab["pair"]
    before = {host: packages(cli, host) for host in HOSTS}
    for host in HOSTS:
        assert before[host][package] == old, f"{host}: {package} is not behind"
    proc = cli("patch", "run", *lab["inventory_args"], "--at", INSIDE, "--serial", "1")
    assert proc.returncode == 1, proc.stdout + proc.stderr

    # batch 1 patched (the control), batch 2 failed unpatched, batches 3 and 4 untouched
    after = {host: packages(cli, host) for host in HOSTS}
    assert after[HOSTS[0]][package] == candidate, proc.stdout
    assert after[FAILING] == before[FAILING]
    assert after[HOSTS[2]] == before[HOSTS[2]]
    assert after[HOSTS[3]] == before[HOSTS[3]]

    # the report: the failed host and its check; the later hosts not run
    [run] = sorted((state_dir / "patch-runs").glob("*-run"))
    reports = {path.stem for path in (run / "reports").glob("*.json")}
    assert reports == {HOSTS[0], FAILING}
    failed = json.loads((run / "reports" / f"{FAILING}.json").read_text())
    assert failed["status"] == "failed"
    assert ABSENT_UNIT in failed["error"] and "not active" in failed["error"]
    assert "the server was not patched" in failed["error"]
    summary = json.loads((run / "summary.json").read_text())
    status = {row["host"]: row["status"] for row in summary["hosts"]}
    assert status == {HOSTS[0]: "ok", FAILING: "failed", HOSTS[2]: "not run", HOSTS[3]: "not run"}
    assert f"{FAILING} FAILED:" in proc.stdout and ABSENT_UNIT in proc.stdout
    rows = {
        line.split()[0]: line
        for line in proc.stdout.splitlines()
        if line.split()[:1] and line.split()[0] in HOSTS
    }
    assert rows[HOSTS[2]].split()[1:3] == ["not", "run"], proc.stdout
    assert rows[HOSTS[3]].split()[1:3] == ["not", "run"], proc.stdout
    assert "patch run failed" in proc.stdout
