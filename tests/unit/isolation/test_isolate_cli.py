"""'hostops bandwidth notify | cap' and 'hostops isolate': the notice's 72 hours, the
records, the emails (no host: the refusals come before any run)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from hostops.cli import main
from hostops.isolation.cli import check_addresses
from hostops.isolation.records import isolation_notice


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("HOSTOPS_SMTP_HOST", raising=False)
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"hosts": {"web01": {"ansible_host": "127.0.0.1"}}}})
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def test_cap_refused_without_a_notice(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bandwidth", "cap", "web01", "--inventory", "inv.yml"]) == 1
    assert "no notice recorded" in capsys.readouterr().err
    assert not (state / "bandwidth" / "web01" / "runs").exists()


def test_cap_refused_until_72_hours_after_the_notice(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bandwidth", "notify", "web01", "--mbps", "20", "--contact", "it@client.example"]
    assert main([*argv, "--at", "2027-03-01T10:00:00+01:00"]) == 0
    folder = state / "bandwidth" / "web01"
    notice = json.loads((folder / "notice.json").read_text())
    assert notice["mbps"] == 20
    assert datetime.fromisoformat(notice["cap_allowed_from"]) - datetime.fromisoformat(
        notice["notified_at"]
    ) == timedelta(hours=72)
    kept = next((folder / "notices").glob("*.eml"))
    message = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert message["To"] == "it@client.example"
    assert "20 Mbit/s" in message.get_content()
    capsys.readouterr()
    # one second short of 72 hours: refused, nothing ran
    cap = ["bandwidth", "cap", "web01", "--inventory", "inv.yml"]
    assert main([*cap, "--at", "2027-03-04T09:59:59+01:00"]) == 1
    assert "refused" in capsys.readouterr().err
    assert not (folder / "runs").exists()


def test_addresses_checked() -> None:
    good, problems = check_addresses(["192.0.2.7", "2001:db8::/64", "10.1.2.3/32"], "--x")
    assert (good, problems) == (["192.0.2.7", "2001:db8::/64", "10.1.2.3"], [])
    _, problems = check_addresses(["::/0", "host.example"], "--x")
    assert problems == [
        "--x: '::/0' is everyone; name ops' own addresses",
        "--x: 'host.example' is not an IP address or network",
    ]


def test_isolation_notice_names_the_server_and_the_reason() -> None:
    moment = datetime.fromisoformat("2027-03-01T09:00:00+00:00")
    notice = isolation_notice(["a@b.example"], "web01", moment, "spam", isolate=True)
    assert "web01" in notice.subject
    assert "Motif : spam" in notice.body
    assert "10:00" in notice.body  # Paris time
