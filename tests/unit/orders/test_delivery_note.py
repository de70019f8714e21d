"""The delivery note: what the servers recorded (backups, software), what the monitoring
registered, and the DNS records the customer must publish: the DKIM keys the
mail role made on each server (its local fact ``mail_dkim``, reported by provision.yml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostops.core.runner import RunResult
from hostops.orders.order import load_order
from hostops.orders.provision import Target, dkim_records, write_delivery_note

ROOT = Path(__file__).resolve().parents[3]
CUSTOM = ROOT / "examples" / "orders" / "custom.yml"
VALUE = "v=DKIM1; h=sha256; k=rsa; s=email; p=MIIBIjANBgkqh"


def test_dkim_records_from_the_fact() -> None:
    fact = {"selector": "hostops", "records": {"b.example": VALUE, "a.example": VALUE}}
    assert dkim_records(fact) == [
        {"name": "hostops._domainkey.a.example", "type": "TXT", "value": VALUE},
        {"name": "hostops._domainkey.b.example", "type": "TXT", "value": VALUE},
    ]
    # a server without the mail stack, or whose keys are not made yet (check mode)
    assert dkim_records({}) == []
    assert dkim_records({"selector": "hostops", "records": {"a.example": ""}}) == []


def test_delivery_note_lists_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    order = load_order(CUSTOM)
    server = order.servers[0]
    facts: dict[str, dict[str, Any]] = {
        server.hostname: {
            "address": "192.0.2.10",
            "os": "Debian 13.2",
            "mail_dkim": {"selector": "hostops", "records": {"shop.example": VALUE}},
        }
    }
    run_dir = tmp_path / "run"
    result = RunResult("successful", 0, run_dir, artifacts={"hostops_delivery": facts})
    markdown = write_delivery_note(order, [Target(server.hostname, None, {})], result, run_dir)
    text = markdown.read_text()
    assert "## DNS records to publish" in text
    assert f'hostops._domainkey.shop.example. IN TXT "{VALUE}"' in text
    note = json.loads((markdown.parent / "delivery-note.json").read_text())
    assert note["servers"][0]["dns_records"] == dkim_records(facts[server.hostname]["mail_dkim"])


def test_no_section_without_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    order = load_order(CUSTOM)
    facts = {order.servers[0].hostname: {"address": "192.0.2.10", "os": "Debian 13.2"}}
    run_dir = tmp_path / "run"
    result = RunResult("successful", 0, run_dir, artifacts={"hostops_delivery": facts})
    markdown = write_delivery_note(
        order, [Target(order.servers[0].hostname, None, {})], result, run_dir
    )
    assert "DNS records" not in markdown.read_text()


def test_the_note_lists_what_the_servers_recorded_not_the_orders_intent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The custom order asks for backups and HTTP/TCP checks; a run whose server recorded
    no backup schedule and whose monitoring registered nothing gets a note that says so."""
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    order = load_order(CUSTOM)
    host = order.servers[0].hostname
    assert order.backups.enabled and order.monitoring.tcp_checks  # the order's intent
    facts = {host: {"address": "192.0.2.10", "os": "Debian 13.2", "backup": {"enabled": False}}}
    run_dir = tmp_path / "run"
    result = RunResult("successful", 0, run_dir, artifacts={"hostops_delivery": facts})
    text = write_delivery_note(order, [Target(host, None, {})], result, run_dir).read_text()
    note = json.loads((tmp_path / "orders" / order.id / "delivery-note.json").read_text())
    assert note["backups"] is None and note["servers"][0]["backups"] is None
    assert note["monitoring"] == {"http_checks": [], "tcp_checks": [], "tls_checks": []}
    assert f"- {host}: none scheduled" in text
    assert f"- {host}: not registered" in text


def test_the_note_lists_the_recorded_schedule_and_registration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: what the backup role and the monitoring server recorded is listed."""
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    order = load_order(CUSTOM)
    host = order.servers[0].hostname
    backup = {
        "enabled": True,
        "time": "21:30",
        "timezone": "Europe/Paris",
        "retention_days": 14,
        "paths": ["/srv"],
    }
    registered = {
        host: {
            "probes": ["icmp"],
            "http_checks": [],
            "tcp_checks": [f"{host}:25"],
            "tls_checks": [],
        }
    }
    facts = {host: {"address": "192.0.2.10", "os": "Debian 13.2", "backup": backup}}
    run_dir = tmp_path / "run"
    artifacts = {"hostops_delivery": facts, "hostops_monitor_registered": registered}
    result = RunResult("successful", 0, run_dir, artifacts=artifacts)
    text = write_delivery_note(order, [Target(host, None, {})], result, run_dir).read_text()
    note = json.loads((tmp_path / "orders" / order.id / "delivery-note.json").read_text())
    schedule = {"schedule": "daily at 21:30 Europe/Paris", "retention_days": 14, "paths": ["/srv"]}
    assert note["backups"] == note["servers"][0]["backups"] == schedule
    assert note["monitoring"]["tcp_checks"] == [f"{host}:25"]
    assert f"- {host}: daily at 21:30 Europe/Paris, kept 14 days (files: /srv)" in text
    assert f"- {host}: ping; checks: {host}:25" in text


def test_a_server_left_out_of_monitoring_keeps_its_delivered_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server deregistered after delivery stays out at the next apply: its note keeps
    the probes delivered (the note does not change, nor is it sent again); the control: a
    server neither registered nor left out is listed as not registered."""
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    order = load_order(CUSTOM)
    host = order.servers[0].hostname
    facts = {host: {"address": "192.0.2.10", "os": "Debian 13.2"}}
    entry = {"probes": ["icmp"], "http_checks": [], "tcp_checks": [], "tls_checks": []}
    run_dir = tmp_path / "run"
    first = RunResult(
        "successful",
        0,
        run_dir,
        artifacts={"hostops_delivery": facts, "hostops_monitor_registered": {host: entry}},
    )
    note = write_delivery_note(order, [Target(host, None, {})], first, run_dir)
    delivered = note.read_text()
    left_out = RunResult(
        "successful",
        0,
        run_dir,
        artifacts={"hostops_delivery": facts, "hostops_monitor_left_out": [host]},
    )
    assert write_delivery_note(order, [Target(host, None, {})], left_out, run_dir).read_text() == (
        delivered
    )
    neither = RunResult("successful", 0, run_dir, artifacts={"hostops_delivery": facts})
    text = write_delivery_note(order, [Target(host, None, {})], neither, run_dir).read_text()
    assert f"- {host}: not registered" in text
