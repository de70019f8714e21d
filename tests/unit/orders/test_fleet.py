"""``hostops order list | show`` and ``hostops fleet``: what the state directory records
about orders, read back; an unknown or malformed order number is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostops.cli import main
from hostops.core import settings
from hostops.core.runner import RunResult
from hostops.orders import fleet
from hostops.orders.order import load_order
from hostops.orders.provision import Target, write_delivery_note

ROOT = Path(__file__).resolve().parents[3]
CUSTOM = ROOT / "examples" / "orders" / "custom.yml"
BASIC = ROOT / "examples" / "orders" / "basic.yml"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("HOSTOPS_CONFIG", str(tmp_path / "none.yml"))
    (tmp_path / "none.yml").write_text("{}\n")
    return tmp_path


def record_apply(path: Path, stamp: str, *, status: str, deliver: bool) -> str:
    order = load_order(path)
    folder = settings.state_dir() / "orders" / order.id
    fleet.write_order(folder, order.to_vars())
    run_dir = folder / "runs" / stamp
    fleet.write_run(
        run_dir,
        {"mode": "apply", "status": status, "changed": 7, "started_at": "s", "finished_at": "f"},
    )
    if deliver:
        server = order.servers[0]
        facts = {server.hostname: {"address": "192.0.2.10", "os": "Debian 13.2"}}
        result = RunResult("successful", 0, run_dir, artifacts={"hostops_delivery": facts})
        write_delivery_note(order, [Target(server.hostname, None, {})], result, run_dir)
    return order.id


def test_list_show_and_fleet(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    delivered = record_apply(CUSTOM, "20270101T100000Z", status="successful", deliver=True)
    failed = record_apply(BASIC, "20270102T100000Z", status="failed", deliver=False)

    assert main(["order", "list", "--json"]) == 0
    listed = {o["order"]: o for o in json.loads(capsys.readouterr().out)}
    assert set(listed) == {delivered, failed}
    assert listed[delivered]["managed_level"] == "custom"
    assert listed[delivered]["delivered_at"] is not None
    assert listed[delivered]["servers"][0]["address"] == "192.0.2.10"
    assert listed[failed]["delivered_at"] is None
    assert listed[failed]["runs"][0]["status"] == "failed"

    assert main(["order", "list"]) == 0
    text = capsys.readouterr().out
    assert delivered in text and "apply successful" in text and "not yet" in text

    assert main(["order", "show", delivered]) == 0
    text = capsys.readouterr().out
    assert "192.0.2.10" in text and "Debian 13.2" in text and "delivery-note.md" in text
    assert "20270101T100000Z" in text

    assert main(["fleet", "--json"]) == 0
    servers = json.loads(capsys.readouterr().out)
    customer = load_order(CUSTOM).customer.name
    # only delivered servers make the fleet
    assert list(servers) == [customer]
    assert servers[customer]["custom"][0]["order"] == delivered


@pytest.mark.parametrize(
    ("number", "message"),
    [("BDC-2099-0001", "is not a known order"), ("../etc", "is not an order number")],
)
def test_show_refuses_an_unknown_order(
    state: Path, number: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["order", "show", number]) == 2
    err = capsys.readouterr().err
    assert f"ORDER: {number!r} {message}" in err


def test_empty_state(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "list"]) == 0
    assert "no orders yet" in capsys.readouterr().out
    assert main(["fleet"]) == 0
    assert "no delivered servers yet" in capsys.readouterr().out


def test_validate_json(state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "validate", str(CUSTOM), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is True and verdict["managed_level"] == "custom"
    bad = tmp_path / "bad.yml"
    bad.write_text(CUSTOM.read_text().replace("managed_level: custom", "managed_level: gold"))
    assert main(["order", "validate", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    assert verdict["valid"] is False
    assert any("managed_level: 'gold'" in p for p in verdict["problems"])


def test_order_vars_are_the_playbooks_extra_vars(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["order", "vars", str(CUSTOM), "--json"]) == 0
    extravars = json.loads(capsys.readouterr().out)
    order = load_order(CUSTOM)
    assert extravars == {
        **json.loads(json.dumps(order.to_vars())),
        "hostops_targets": ",".join(s.hostname for s in order.servers),
    }
    bad = tmp_path / "bad.yml"
    bad.write_text(CUSTOM.read_text().replace("os: debian13", "os: debian9"))
    assert main(["order", "vars", str(bad)]) == 2
    assert "os: 'debian9'" in capsys.readouterr().err
