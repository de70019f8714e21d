"""hostops.core.targets: how every command reads the operator's inventories (Ansible's own
parser, opened once) and resolves a named server, never the implicit localhost."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hostops.core.errors import UsageError
from hostops.core.targets import Inventory, generated_inventory, inventory_host, inventory_sources


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "web": {
                            "hosts": {"web01.example.fr": {}, "web02.example.fr": {}},
                            "vars": {"hostops_contact": "ops@example.fr"},
                        },
                        "monitoring_servers": {"hosts": {"mon1.example.fr": {}}},
                        "empty": {},
                    }
                }
            }
        )
    )
    return path


def test_open_refuses_no_inventory_and_missing_files_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--inventory: required"):
        Inventory.open([])
    missing = tmp_path / "nope.yml"
    with pytest.raises(UsageError) as raised:
        Inventory.open([missing], option="--monitoring-inventory")
    assert raised.value.problems == [f"--monitoring-inventory: {missing} does not exist"]


def test_hosts_groups_and_variables(inventory_file: Path) -> None:
    inventory = Inventory.open([inventory_file])
    assert inventory.host("web01.example.fr") is not None  # control
    assert inventory.host("web09.example.fr") is None
    # Ansible answers 'localhost' with an implicit host (the controller): not a server
    assert inventory.manager.get_host("localhost") is not None
    assert inventory.host("localhost") is None
    assert [h.name for h in inventory.group_hosts("monitoring_servers")] == ["mon1.example.fr"]
    assert inventory.group_hosts("empty") == []
    assert inventory.group_hosts("absent") == []
    web01 = inventory.host("web01.example.fr")
    assert inventory.host_vars(web01)["hostops_contact"] == "ops@example.fr"
    assert "hostops_contact" not in inventory.host_vars(inventory.host("mon1.example.fr"))


def test_a_limit_chooses_hosts_and_does_not_stick(inventory_file: Path) -> None:
    inventory = Inventory.open([inventory_file])
    every = ["mon1.example.fr", "web01.example.fr", "web02.example.fr"]
    assert [h.name for h in inventory.hosts()] == every
    assert [h.name for h in inventory.hosts("web:!web02.example.fr")] == ["web01.example.fr"]
    assert [h.name for h in inventory.hosts("localhost")] == []
    assert [h.name for h in inventory.hosts()] == every


def test_inventory_host_names_the_option_and_the_inventory(inventory_file: Path) -> None:
    assert inventory_host("web02.example.fr", [inventory_file], lab=False) == "web02.example.fr"
    for name in ("localhost", "web09.example.fr"):
        with pytest.raises(UsageError) as raised:
            inventory_host(name, [inventory_file], lab=False, option="--server")
        assert raised.value.problems == [
            f"--server: {name!r} is not a host of the inventory ({inventory_file})"
        ]


def test_sources_lab_or_inventories(inventory_file: Path) -> None:
    assert inventory_sources(lab=False, inventories=[inventory_file]) == [inventory_file]
    with pytest.raises(UsageError, match="give one of them, not both"):
        inventory_sources(lab=True, inventories=[inventory_file])


def test_generated_inventory_groups_and_variables() -> None:
    data = generated_inventory({"targets": {"web01": {"ansible_host": "192.0.2.1"}}}, {"a": 1})
    assert data == {
        "all": {
            "children": {"targets": {"hosts": {"web01": {"ansible_host": "192.0.2.1"}}}},
            "vars": {"a": 1},
        }
    }
    assert "vars" not in generated_inventory({"g": {}}, {})["all"]
