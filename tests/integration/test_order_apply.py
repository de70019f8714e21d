"""An order provisioned end to end on a fresh Debian 13 lab host (needs root).

The sequence is one story, in order: check mode on the fresh host changes nothing; the
apply succeeds and writes the delivery note; a second apply changes nothing.

This module runs under Ansible's stock strategy (HOSTOPS_ANSIBLE_STRATEGY=linear), the
rest of the suite under the default, Mitogen's: the suite runs a full order under each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import host_state
import pytest
from lab_helpers import pip_installed_hostops

from hostops.core import run_events

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "examples" / "orders" / "none.yml"
ORDER_ID = "BDC-2027-0101"
LAB_HOST = "bdc-2027-0101-1"
SERVER = "lab1.alixans.example"  # its name in the order's inventory


@pytest.fixture(scope="module", autouse=True)
def stock_strategy():  # type: ignore[no-untyped-def]
    """Every hostops command of this module (checkout's and pip-installed) runs stock."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSTOPS_ANSIBLE_STRATEGY", "linear")
        yield


@pytest.fixture(scope="module")
def fresh_host(cli: Any, root_user: None) -> Iterator[str]:
    cli("lab", "down", "--prefix", "bdc-2027-0101-", check=True)
    cli(
        "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", "bdc-2027-0101-", check=True
    )
    yield LAB_HOST
    cli("lab", "down", "--prefix", "bdc-2027-0101-", check=True)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return pip_installed_hostops(tmp_path_factory)


def fingerprint(cli: Any, host: str) -> dict[str, list[str]]:
    return host_state.of_lab_host(cli, host)


def gatherings_of_last_run(state_dir: Path) -> dict[str, int]:
    """Fact gatherings per host in the order's last run, from ansible-runner's events
    (reads of /etc/ansible/facts.d alone not counted: docs/performance.md)."""
    runs = sorted((state_dir / "orders" / ORDER_ID / "runs").iterdir())
    results = list(run_events.task_results(runs[-1]))
    assert results, f"no job events under {runs[-1]}"
    return run_events.gatherings_per_host(results)


# At level none the software, and so its updates, stay the client's (issue 19): the client
# has Debian's automatic updates on; hostops must leave them so.
CLIENT_UPDATES = (
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
    " unattended-upgrades >/dev/null"
    ' && printf \'APT::Periodic::Update-Package-Lists "1";\\n'
    'APT::Periodic::Unattended-Upgrade "1";\\n\' > /etc/apt/apt.conf.d/20auto-upgrades'
)
CLIENT_UPDATES_STATE = (
    "dpkg-query -W -f='${Status}\\n' unattended-upgrades;"
    " grep -c 'Unattended-Upgrade \"1\"' /etc/apt/apt.conf.d/20auto-upgrades"
)


def test_check_mode_on_a_fresh_host_changes_nothing(
    cli: Any, fresh_host: str, state_dir: Path
) -> None:
    cli("lab", "ssh", fresh_host, "--", CLIENT_UPDATES, check=True, timeout=600)
    before = fingerprint(cli, fresh_host)
    proc = cli("order", "apply", str(ORDER), "--lab", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check mode predicts" in proc.stdout
    predicted = int(proc.stdout.split("check mode predicts ")[1].split()[0])
    assert predicted > 0  # a fresh host needs work, and check mode says so
    # provision.yml's plays share one gathering per host (issue 20)
    assert gatherings_of_last_run(state_dir) == {SERVER: 1}
    assert host_state.differences(before, fingerprint(cli, fresh_host)) == []
    assert not (state_dir / "orders" / ORDER_ID / "delivery-note.json").exists()


def test_apply_provisions_and_writes_the_delivery_note(
    cli: Any, fresh_host: str, state_dir: Path
) -> None:
    proc = cli("order", "apply", str(ORDER), "--lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # progress per host and task, then the summary table
    assert "lab1.alixans.example" in proc.stdout
    assert "changed" in proc.stdout
    assert "HOST" in proc.stdout and "CHANGED" in proc.stdout
    # facts gathered once for the whole run: provision.yml imports several playbooks, the
    # first play gathers and the others reuse its facts (issue 20)
    assert gatherings_of_last_run(state_dir) == {SERVER: 1}
    note = json.loads((state_dir / "orders" / ORDER_ID / "delivery-note.json").read_text())
    assert note["order"] == ORDER_ID
    server = note["servers"][0]
    assert server["hostname"] == "lab1.alixans.example"
    status = cli("lab", "status", check=True).stdout
    address = next(line.split()[2] for line in status.splitlines() if line.startswith(LAB_HOST))
    assert server["address"] == address
    assert server["os"].startswith("Debian 13")
    assert "openssh-server" in server["software"]
    assert len(note["entry_into_service"]) == 10  # YYYY-MM-DD
    markdown = (state_dir / "orders" / ORDER_ID / "delivery-note.md").read_text()
    assert f"| lab1.alixans.example | {address} |" in markdown
    assert note["entry_into_service"] in markdown
    # the server got its FQDN from the order
    who = cli("lab", "ssh", fresh_host, "--", "hostname -f", check=True)
    assert who.stdout.strip() == "lab1.alixans.example"
    # the client's automatic updates are still there, as the client set them
    updates = cli("lab", "ssh", fresh_host, "--", CLIENT_UPDATES_STATE, check=True)
    assert updates.stdout.split("\n")[:2] == ["install ok installed", "1"], updates.stdout


def test_second_apply_changes_nothing(installed: Any, fresh_host: str, state_dir: Path) -> None:
    """The second apply, by a pip-installed hostops run from outside the clone: it finds
    the collection it carries and changes nothing; its records are the same state's."""
    first = json.loads((state_dir / "orders" / ORDER_ID / "delivery-note.json").read_text())
    where = installed("--version")
    assert where.returncode == 0 and "hostops" in where.stdout, where.stdout + where.stderr
    proc = installed("order", "apply", str(ORDER), "--lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"order {ORDER_ID}: 0 change(s)" in proc.stdout
    assert gatherings_of_last_run(state_dir) == {SERVER: 1}
    second = json.loads((state_dir / "orders" / ORDER_ID / "delivery-note.json").read_text())
    assert second["entry_into_service"] == first["entry_into_service"]
    assert second["delivered_at"] == first["delivered_at"]
    # the playbooks it ran were its own copy, not the checkout's
    runs = sorted((state_dir / "orders" / ORDER_ID / "runs").iterdir())
    command = json.loads((runs[-1] / "runner" / "artifacts" / "run" / "command").read_text())
    playbook = next(a for a in command["command"] if a.endswith("provision.yml"))
    assert "site-packages/hostops/collection/" in playbook, playbook
    assert not playbook.startswith(str(ROOT) + "/playbooks"), playbook


def test_order_list_and_show(installed: Any, fresh_host: str, state_dir: Path) -> None:
    listing = installed("order", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    (record,) = [o for o in json.loads(listing.stdout) if o["order"] == ORDER_ID]
    assert record["managed_level"] == "none"
    assert record["servers"][0]["hostname"] == "lab1.alixans.example"
    assert record["delivered_at"] is not None
    # three runs: the check, the first apply, the second apply
    assert [(r["mode"], r["status"]) for r in record["runs"]] == [
        ("check", "successful"),
        ("apply", "successful"),
        ("apply", "successful"),
    ]
    assert record["runs"][-1]["changed"] == 0 and record["runs"][1]["changed"] > 0
    # the three runs were stock 'linear' runs, as this module asks (the default is Mitogen)
    runs = sorted((state_dir / "orders" / ORDER_ID / "runs").iterdir())
    assert len(runs) == 3, runs
    for run in runs:
        envvars = json.loads((run / "runner" / "env" / "envvars").read_text())
        assert envvars["ANSIBLE_STRATEGY"] == "linear", run
        assert "ANSIBLE_STRATEGY_PLUGINS" not in envvars, run
    shown = installed("order", "show", ORDER_ID)
    assert shown.returncode == 0, shown.stderr
    assert record["servers"][0]["address"] in shown.stdout
    unknown = installed("order", "show", "BDC-1999-0001")
    assert unknown.returncode == 2
    assert "ORDER: 'BDC-1999-0001' is not a known order" in unknown.stderr


def test_bad_order_touches_no_host(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(ORDER.read_text().replace("managed_level: none", "managed_level: gold"))

    # Only this order's hosts: the other test files boot and remove theirs meanwhile.
    def order_hosts() -> list[str]:
        status = cli("lab", "status", check=True).stdout
        return [line for line in status.splitlines() if line.startswith("bdc-2027-0101-")]

    before = order_hosts()
    proc = cli("order", "apply", str(bad), "--lab")
    assert proc.returncode == 2
    assert "managed_level: 'gold'" in proc.stderr
    assert order_hosts() == before
