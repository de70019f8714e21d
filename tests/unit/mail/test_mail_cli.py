"""``hostops mail suspend | resume`` before any host: the reason's rule, where the
customer's contact comes from, and the notice (the lab run is in
molecule/resources/mail/tests/test_mass_mail.py; hostile options in test_hostile_input.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hostops.core.errors import UsageError
from hostops.mail import suspension
from hostops.orders import fleet


@pytest.mark.parametrize(
    ("reason", "ok"),
    [
        ("Mass sending: 4000 messages in an hour", True),
        ("Envoi massif signalé par l'équipe (ticket 4521)", True),
        ("", False),
        ("   ", False),
        ("x" * 301, False),
        ("a {{ lookup('pipe', 'id') }}", False),
        ("{% raw %}", False),
        ("two\nlines", False),
    ],
)
def test_reason_rule(reason: str, ok: bool) -> None:
    problems = suspension.check_reason(reason)
    assert (problems == []) is ok, problems
    assert all(p.startswith("--reason: ") for p in problems)


def test_contact_from_the_inventory_then_from_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    inventory = tmp_path / "inv.yml"
    hosts = {"mail1": {"hostops_customer_email": "it@shop.example"}, "mail2": {}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    assert suspension.inventory_contacts([inventory], "mail1") == ["it@shop.example"]
    assert suspension.inventory_contacts([inventory], "mail2") == []
    order = tmp_path / "state" / "orders" / "BDC-2027-0001"
    order.mkdir(parents=True)
    (order / "order.json").write_text(
        json.dumps(
            {
                "hostops_servers": [{"hostname": "mail2"}],
                "hostops_customer": {"name": "Shop", "contact": {"email": "boss@shop.example"}},
            }
        )
    )
    assert fleet.server_contacts("mail2") == ["boss@shop.example"]
    assert fleet.server_contacts("mail1") == []


def test_a_bad_contact_in_the_inventory_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"hosts": {"mail1": {"hostops_customer_email": "nobody"}}}})
    )
    with pytest.raises(UsageError, match="hostops_customer_email 'nobody'"):
        suspension.inventory_contacts([inventory], "mail1")


def test_the_notices_name_the_account_the_server_and_the_reason() -> None:
    suspended = suspension.notice(
        to=["it@shop.example"],
        host="mail1.shop.example",
        address="bob@shop.example",
        state="suspended",
        reason="4000 messages in an hour",
    )
    assert suspended.subject == "Envoi de courriel suspendu pour bob@shop.example"
    assert "mail1.shop.example" in suspended.body and "Motif : 4000 messages" in suspended.body
    assert "3.1.2" in suspended.body
    message = suspended.message()
    assert message["To"] == "it@shop.example"
    resumed = suspension.notice(
        to=["it@shop.example"],
        host="mail1.shop.example",
        address="bob@shop.example",
        state="active",
        reason="",
    )
    assert resumed.subject == "Envoi de courriel rétabli pour bob@shop.example"
    assert "Motif" not in resumed.body


def test_no_contact_is_refused_before_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --contact, an inventory contact or an order, and without --no-send: exit 2
    naming --contact and the host, and nothing run (no run directory). The host's SSH
    port is closed: a run would fail otherwise."""
    state = tmp_path / "state"
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(state))
    inventory = tmp_path / "inv.yml"
    hosts = {"web01": {"ansible_host": "127.0.0.1", "ansible_port": 1}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    with pytest.raises(UsageError, match="--contact: web01 has no customer contact") as err:
        suspension.run(
            state="suspended",
            host="web01",
            address="bob@example.fr",
            reason="spam",
            contacts=[],
            no_send=False,
            lab=False,
            inventories=[inventory],
        )
    assert err.value.exit_status == 2
    assert not (state / "mail-suspensions").exists()
