"""``hostops patch`` without a host: arguments, the window's refusal, notices, the summary."""

from __future__ import annotations

import argparse
import email
import email.message
import email.policy
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostops import cli
from hostops.core.errors import UsageError
from hostops.core.runner import RunResult
from hostops.maintenance import notices
from hostops.patching import run as patch_run
from hostops.patching import targets as patch_targets

ROOT = Path(__file__).resolve().parents[3]
# Outside the window: a Saturday; and a Tuesday morning, inside it.
SATURDAY = "2027-01-16T10:00:00+01:00"
TUESDAY = "2027-01-12T10:00:00+01:00"


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Any:
    """hostops.cli.main with the patch and maintenance commands registered."""
    modules = tuple(
        dict.fromkeys((*cli.COMMAND_MODULES, "hostops.patching.cli", "hostops.maintenance.cli"))
    )
    monkeypatch.setattr(cli, "COMMAND_MODULES", modules)
    return cli.main


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(path))
    return path


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """Two customers' servers at addresses nothing answers on (TEST-NET-1)."""
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n"
        "  children:\n"
        "    martin:\n"
        "      hosts:\n"
        "        web01.martin.example: {ansible_host: 192.0.2.10}\n"
        "      vars: {hostops_customer_email: it@martin.example}\n"
        "    lemoine:\n"
        "      hosts:\n"
        "        app1.lemoine.example: {ansible_host: 192.0.2.30}\n"
        "        app2.lemoine.example: {ansible_host: 192.0.2.31}\n"
        "      vars: {hostops_customer_email: [ops@lemoine.example]}\n"
    )
    return path


def test_outside_the_window_a_run_is_refused_and_nothing_recorded(
    main: Any, state: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["patch", "run", "--inventory", str(inventory), "--at", SATURDAY])
    assert status == 1
    err = capsys.readouterr().err
    assert "the maintenance window is closed (weekend (Saturday)" in err
    assert "next opening 2027-01-18 09:00" in err
    assert "nothing was changed on 3 host(s)" in err
    assert not state.exists()  # no run directory: no playbook ran


@pytest.mark.parametrize(
    "case",
    [
        (["--emergency"], "--reason: required with --emergency"),
        (["--emergency", "--reason", "  "], "--reason: required with --emergency"),
        (["--reason", "CVE"], "--reason: only with --emergency"),
        (["--at", "2027-01-12 10:00"], "--at: '2027-01-12 10:00' has no UTC offset"),
        (["--at", "tomorrow"], "--at: 'tomorrow' is not an ISO 8601 date and time"),
        (["--serial", "0,50%"], "--serial: '0,50%' must be numbers or percentages"),
        (["--max-fail-percentage", "101"], "--max-fail-percentage: 101 is not 0..100"),
        (["--contact", "not-an-email"], "--contact: 'not-an-email' is not an email address"),
        (["--limit", "nothing-matches"], "--limit 'nothing-matches': no host to patch"),
    ],
)
def test_bad_arguments_exit_2_before_any_host(
    main: Any,
    state: Path,
    inventory: Path,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], str],
) -> None:
    arguments, message = case
    status = main(["patch", "run", "--inventory", str(inventory), "--at", TUESDAY, *arguments])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not state.exists()


def test_every_problem_is_reported_at_once(
    main: Any, state: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["patch", "run", "--inventory", str(inventory), "--emergency", "--at", "x", "--serial", "a"]
    )
    assert status == 2
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["--reason", "--at", "--serial"]


def test_a_missing_inventory_is_a_usage_error(
    main: Any, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["patch", "plan", "--inventory", str(tmp_path / "nope.yml")]) == 2
    assert f"--inventory: {tmp_path / 'nope.yml'} does not exist" in capsys.readouterr().err


def test_an_emergency_needs_someone_to_tell(
    main: Any, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "bare.yml"
    inventory.write_text("all:\n  hosts:\n    lone.example: {ansible_host: 192.0.2.50}\n")
    status = main(
        [
            *("patch", "run", "--inventory", str(inventory), "--at", SATURDAY),
            *("--emergency", "--reason", "CVE-2027-0001 in openssl"),
        ]
    )
    assert status == 2
    assert "--emergency: the client must be told" in capsys.readouterr().err
    assert not state.exists()


def targets_args(**given: Any) -> argparse.Namespace:
    values: dict[str, Any] = {"inventory": [], "lab_host": [], "limit": None, "order": None}
    return argparse.Namespace(**{**values, **given})


def test_an_unknown_lab_host_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_LAB_DIR", str(tmp_path / "lab"))  # an empty lab
    with pytest.raises(UsageError) as error:
        patch_targets.resolve_targets(targets_args(lab_host=["ghost-1"]))
    assert error.value.problems == [
        "--lab-host: 'ghost-1' is not a lab host (see 'hostops lab status')"
    ]


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"lab": True, "host": ["ghost-1"]}, "--host: 'ghost-1' is not a lab host"),
        ({"lab": True, "host": []}, "--host: required with --lab (the lab hosts to patch)"),
        ({"host": ["web01.martin.example"]}, "--host: only with --lab"),
    ],
)
def test_lab_hosts_are_named_with_lab_and_host(
    given: dict[str, Any], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_LAB_DIR", str(tmp_path / "lab"))  # an empty lab
    with pytest.raises(UsageError) as error:
        patch_targets.resolve_targets(targets_args(**given))
    assert error.value.problems[0].startswith(problem)


def test_contacts_come_from_the_inventory_per_customer(inventory: Path) -> None:
    targets = patch_targets.resolve_targets(targets_args(inventory=[inventory]))
    assert targets.hosts == [
        "app1.lemoine.example",
        "app2.lemoine.example",
        "web01.martin.example",
    ]
    assert targets.contacts == {
        "it@martin.example": ["web01.martin.example"],
        "ops@lemoine.example": ["app1.lemoine.example", "app2.lemoine.example"],
    }


def test_limit_narrows_hosts_and_contacts(inventory: Path) -> None:
    targets = patch_targets.resolve_targets(targets_args(inventory=[inventory], limit="martin"))
    assert targets.hosts == ["web01.martin.example"]
    assert targets.contacts == {"it@martin.example": ["web01.martin.example"]}


def test_a_bad_contact_in_the_inventory_is_named(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    a.example: {hostops_customer_email: nobody}\n")
    with pytest.raises(UsageError) as error:
        patch_targets.resolve_targets(targets_args(inventory=[inventory]))
    assert error.value.problems == [
        "a.example: hostops_customer_email 'nobody' is not an email address"
    ]


def test_the_order_brings_its_http_checks_and_its_contact(tmp_path: Path) -> None:
    order = tmp_path / "order.yml"
    order.write_text(
        (ROOT / "examples" / "orders" / "none.yml")
        .read_text()
        .replace(
            "customer:\n  name: Alixans Lab\n",
            "customer:\n  name: Alixans Lab\n  contact:\n    name: Jeanne Martin\n"
            "    phone: '+33 1 23 45 67 89'\n    email: jeanne@alixans-lab.example\n",
        )
        + "monitoring:\n  http_checks: [https://www.alixans-lab.example/]\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    lab1.alixans.example:\n    other.example:\n")
    targets = patch_targets.resolve_targets(targets_args(inventory=[inventory], order=order))
    assert targets.order_http_checks == {
        "lab1.alixans.example": ["https://www.alixans-lab.example/"]
    }
    assert targets.contacts == {"jeanne@alixans-lab.example": ["lab1.alixans.example"]}


def test_an_order_whose_servers_are_not_targeted_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    other.example:\n")
    with pytest.raises(UsageError) as error:
        patch_targets.resolve_targets(
            targets_args(inventory=[inventory], order=ROOT / "examples" / "orders" / "none.yml")
        )
    assert "--order: none of the servers of order BDC-2027-0101" in error.value.problems[0]


@pytest.mark.parametrize(
    ("text", "serial"),
    [(None, None), ("1", [1]), ("1,25%", [1, "25%"]), ("2, 5 ,100%", [2, 5, "100%"])],
)
def test_parse_serial(text: str | None, serial: list[int | str] | None) -> None:
    assert patch_run.parse_serial(text) == serial


# -- notices --------------------------------------------------------------------------


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive a message (the relay ops would configure)."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 relay.test ESMTP\r\n")
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
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 relay.test\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HOSTOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HOSTOPS_SMTP_PORT", str(server.server_address[1]))
    yield server.messages
    server.shutdown()
    server.server_close()


def read_eml(path: Path) -> email.message.EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_emergency_notices_go_to_each_customer_with_only_their_hosts(
    inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)
    targets = patch_targets.resolve_targets(targets_args(inventory=[inventory]))
    deliveries = patch_run.send_emergency_notices(targets, tmp_path, "CVE-2027-0001 (openssl)")
    assert [d["sent"] for d in deliveries] == [False, False]
    martin = read_eml(tmp_path / "emergency-notice-1.eml")
    lemoine = read_eml(tmp_path / "emergency-notice-2.eml")
    assert martin["To"] == "it@martin.example"
    assert lemoine["To"] == "ops@lemoine.example"
    assert martin["Subject"].startswith("Intervention d'urgence en cours le ")
    body = martin.get_body().get_content()  # type: ignore[union-attr]
    assert "Motif : CVE-2027-0001 (openssl)" in body
    assert "web01.martin.example" in body
    assert "lemoine" not in body
    assert "app1.lemoine.example, app2.lemoine.example" in lemoine.get_body().get_content()  # type: ignore[union-attr]


def test_emergency_notices_are_sent_through_the_relay(
    inventory: Path, tmp_path: Path, smtp_relay: list[bytes]
) -> None:
    targets = patch_targets.resolve_targets(targets_args(inventory=[inventory], limit="martin"))
    deliveries = patch_run.send_emergency_notices(targets, tmp_path, "CVE-2027-0001")
    assert deliveries == [
        {
            "file": str(tmp_path / "emergency-notice-1.eml"),
            "to": ["it@martin.example"],
            "sent": True,
            "error": None,
        }
    ]
    assert len(smtp_relay) == 1
    received = email.message_from_bytes(smtp_relay[0], policy=email.policy.default)
    assert received["To"] == "it@martin.example"
    assert received["Message-ID"] == read_eml(tmp_path / "emergency-notice-1.eml")["Message-ID"]


def test_a_relay_that_refuses_is_reported_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HOSTOPS_SMTP_PORT", "9")  # discard: nothing listens here
    notice = notices.Notice(("a@b.example",), "s", "b\n")
    delivery = notices.deliver(notice, tmp_path / "n.eml")
    assert not delivery.sent
    assert delivery.error is not None and delivery.error.startswith("127.0.0.1:9: ")
    assert "NOT SENT" in delivery.describe()
    assert (tmp_path / "n.eml").exists()


# -- the summary ----------------------------------------------------------------------

NGINX = {"name": "nginx", "from": "1.22.1-9+deb12u9", "to": "1.22.1-9+deb12u11"}
PG = {"name": "postgresql-15", "from": "15.18-0+deb12u1", "to": "15.20-0+deb12u1"}


def report(status: str = "ok", **result: Any) -> dict[str, Any]:
    return {"host": "h", "status": status, "error": None, "result": result}


def test_summary_rows_table_and_majors_to_plan() -> None:
    reports = {
        "web1": report(
            applied=[NGINX],
            held=[{**PG, "reason": "major"}, {**NGINX, "name": "x", "reason": "apt-mark hold"}],
            restarted=["nginx.service"],
            restart_skipped=["dbus.service"],
            reboot_pending=True,
            reboot_reasons=["kernel 6.1.0-41-amd64 is installed, 6.1.0-40-amd64 runs"],
        ),
        "web2": {
            "host": "web2",
            "status": "failed",
            "error": "Assert the services are active (before the update): nginx.service not active",
            "result": None,
        },
    }
    result = RunResult("failed", 2, Path("/x"), hosts={"web3": {"unreachable": 1}})
    rows = patch_run.host_rows(["web1", "web2", "web3"], reports, result)
    assert patch_run.summary_table(rows, plan=False).splitlines() == [
        "HOST  STATUS       APPLIED  HELD (MAJOR)  HELD (OTHER)  FAILED  RESTARTED  REBOOT",
        "web1  ok           1        1             1             0       1          pending",
        "web2  failed       0        0             0             0       0          no",
        "web3  unreachable  0        0             0             0       0          no",
    ]
    lines = patch_run.details(rows, plan=False)
    assert "web1 applied: nginx 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11" in lines
    assert "web1 held: x 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11 (apt-mark hold)" in lines
    assert "web1 not restarted (until the next reboot): dbus.service" in lines
    assert any(line.startswith("web1 needs a reboot (kernel 6.1.0-41") for line in lines)
    assert any(line.startswith("web2 FAILED: Assert the services are active") for line in lines)
    assert lines[-2:] == [
        "Major updates held, to plan with the client (§4.1.3):",
        "  web1  postgresql-15 15.18-0+deb12u1 -> 15.20-0+deb12u1",
    ]


def test_plan_summary_says_would_apply() -> None:
    rows = patch_run.host_rows(
        ["a"], {"a": report(applied=[NGINX])}, RunResult("successful", 0, Path("/x"))
    )
    assert "WOULD APPLY" in patch_run.summary_table(rows, plan=True)
    assert patch_run.details(rows, plan=True) == [
        "a would apply: nginx 1.22.1-9+deb12u9 -> 1.22.1-9+deb12u11"
    ]
