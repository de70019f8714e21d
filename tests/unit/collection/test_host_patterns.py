"""Every play whose hosts come from hostops_targets keeps every server of a comma-separated
list, the form 'hostops order vars' gives to AWX or ansible-playbook
(``hostops_targets: web1.example,web2.example``), or of a colon-separated one (Ansible's
older form), and leaves out ops' own servers where its pattern excludes them. Ansible
splits a pattern on commas first, and a colon inside one of the parts is no longer a
separator: ``web1,web2:!monitoring_servers`` is the hosts ``web1`` and
``web2:!monitoring_servers`` (none), so the second server got no firewall, no monitoring
agent and no backups. The plays give Ansible a list of patterns instead, which it splits
one by one. The plays' patterns are templated as Ansible templates them and matched against
an inventory of two servers, a backup host and a monitoring server."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[3]
INVENTORY = """\
s1.example
s2.example
[backup_servers]
b1.example
[monitoring_servers]
m1.example
"""


def target_plays() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text()) or []:
            hosts = str(play.get("hosts", ""))
            if "hostops_targets" in hosts:
                found.append((f"{path.name}: {play['name']}", hosts))
    return found


PLAYS = target_plays()


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> InventoryManager:
    path = tmp_path_factory.mktemp("inventory") / "hosts.ini"
    path.write_text(INVENTORY)
    return InventoryManager(loader=DataLoader(), sources=[str(path)])


def groups_of(inventory: InventoryManager) -> dict[str, list[str]]:
    """The magic variable groups, as a run has it for this inventory."""
    return {name: [h.name for h in group.get_hosts()] for name, group in inventory.groups.items()}


def selected(inventory: InventoryManager, hosts: str, **variables: object) -> set[str]:
    templar = Templar(loader=DataLoader(), variables={"groups": groups_of(inventory), **variables})
    pattern = templar.template(trust_as_template(hosts))
    return {host.name for host in inventory.list_hosts(pattern)}


def test_the_plays_are_found() -> None:
    names = [name for name, _ in PLAYS]
    assert len(PLAYS) >= 10, names
    assert any(name.startswith("provision.yml: ") for name in names), names
    assert any(name.startswith("firewall.yml: ") for name in names), names


@pytest.mark.parametrize(("name", "hosts"), PLAYS, ids=[name for name, _ in PLAYS])
def test_a_comma_separated_target_list_keeps_every_server(
    inventory: InventoryManager, name: str, hosts: str
) -> None:
    # the control: one server, which the patterns always handled
    one = selected(inventory, hosts, hostops_targets="s1.example")
    assert "s1.example" in one and "s2.example" not in one, (name, hosts, one)
    # two, comma-separated (or colon-separated, Ansible's older form): the same hosts, and
    # the second server
    for two in ("s1.example,s2.example", "s1.example:s2.example"):
        listed = selected(inventory, hosts, hostops_targets=two)
        assert listed == one | {"s2.example"}, (name, hosts, two, listed)


# The host lists that plays query from the same variables (inventory_hostnames): the
# servers registered on the monitoring servers, the backup hosts' clients in the firewall.
QUERIES = [
    ("monitor-register.yml", "__hostops_monitor_servers", "hostops_targets"),
    (
        "vars/firewall.yml",
        "__hostops_firewall_backup_client_names",
        "hostops_firewall_backup_clients",
    ),
]


@pytest.fixture(scope="module")
def lookups() -> None:
    """The lookup plugins (inventory_hostnames), as a run has them; once per process."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "AnsibleCollectionFinder has already been configured")
        init_plugin_loader()


def query_expression(playbook: str, name: str) -> str:
    document = yaml.safe_load((ROOT / "playbooks" / playbook).read_text())
    if isinstance(document, dict):
        return str(document[name])
    return next(str(play["vars"][name]) for play in document if name in play.get("vars", {}))


@pytest.mark.parametrize(("playbook", "name", "variable"), QUERIES, ids=[q[1] for q in QUERIES])
def test_a_comma_separated_list_keeps_every_server_in_the_queries(
    inventory: InventoryManager, lookups: None, playbook: str, name: str, variable: str
) -> None:
    expression = query_expression(playbook, name)
    groups = groups_of(inventory)
    found = {}
    for value in ("s1.example", "s1.example,s2.example", "s1.example:s2.example"):
        templar = Templar(loader=DataLoader(), variables={"groups": groups, variable: value})
        found[value] = set(templar.template(trust_as_template(expression)))
    assert found["s1.example"] == {"s1.example"}, found  # the control
    assert found["s1.example,s2.example"] == {"s1.example", "s2.example"}, found
    assert found["s1.example:s2.example"] == {"s1.example", "s2.example"}, found
