"""The delivery note lists the DNS records the customer must publish: the DKIM keys the
mail role made on each server (its local fact ``mail_dkim``, reported by provision.yml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostops.order import load_order
from hostops.provision import Target, dkim_records, write_delivery_note
from hostops.runner import RunResult

ROOT = Path(__file__).resolve().parents[2]
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
