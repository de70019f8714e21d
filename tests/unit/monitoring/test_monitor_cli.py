"""``hostops monitor register | deregister``: arguments are checked and hosts resolved
before any host is touched; a bad one exits 2 with a line naming the argument."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostops.cli import main
from hostops.core.errors import UsageError
from hostops.lab.nspawn import order_host_prefix
from hostops.monitoring.registration import (
    MONITORING_GROUP,
    SERVERS_GROUP,
    Plan,
    plan_deregister,
    plan_register,
)
from hostops.orders.order import load_order

ROOT = Path(__file__).resolve().parents[3]
ORDERS = ROOT / "examples" / "orders"
INVENTORY = """\
all:
  children:
    monitoring_servers:
      hosts:
        mon1.alteo.example: {ansible_host: 192.0.2.200}
    customers:
      hosts:
        app1.lemoine.example: {ansible_host: 10.1.2.3}
"""
NO_MONITORING = """\
all:
  hosts:
    app1.lemoine.example: {}
    mon2.alteo.example: {}
"""


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def bare_inventory(tmp_path: Path) -> Path:
    path = tmp_path / "bare.yml"
    path.write_text(NO_MONITORING)
    return path


def problems(err: pytest.ExceptionInfo[UsageError]) -> str:
    return "\n".join(err.value.problems)


def test_register_plan_for_a_supervision_order(inventory: Path) -> None:
    order = load_order(ORDERS / "supervision.yml")
    plan = plan_register(
        order, "app1.lemoine.example", inventories=[inventory], lab=False, server=None
    )
    assert plan.playbook == "monitor-register.yml"
    # the order's address wins, as for 'hostops order apply'
    assert plan.hosts[SERVERS_GROUP] == {
        "app1.lemoine.example": {
            "hostops_fqdn": "app1.lemoine.example",
            "ansible_host": "192.0.2.31",
        }
    }
    assert plan.hosts[MONITORING_GROUP] == {}  # the inventory's group is used
    assert plan.limit is None
    assert plan.extravars["hostops_targets"] == SERVERS_GROUP
    assert plan.extravars["hostops_managed_level"] == "supervision"
    assert plan.extravars["hostops_customer"]["contact"]["email"] == "it@lemoine.example"
    assert plan.extravars["hostops_bandwidth_mbps"] == 101
    assert plan.inventories == [inventory]


def test_register_with_a_named_monitoring_server(inventory: Path) -> None:
    order = load_order(ORDERS / "basic.yml")
    plan = plan_register(
        order,
        "srv1.dupuis.example",
        inventories=[inventory],
        lab=False,
        server="mon1.alteo.example",
    )
    assert plan.hosts[MONITORING_GROUP] == {"mon1.alteo.example": {}}
    assert plan.limit == "localhost,mon1.alteo.example,srv1.dupuis.example"
    generated = plan.inventory()["all"]["children"]
    assert set(generated) == {SERVERS_GROUP, MONITORING_GROUP}


def test_level_none_has_no_monitoring(inventory: Path) -> None:
    order = load_order(ORDERS / "none.yml")
    with pytest.raises(UsageError) as err:
        plan_register(
            order, "lab1.alixans.example", inventories=[inventory], lab=False, server=None
        )
    assert "--order: order BDC-2027-0101 has managed level 'none'" in problems(err)


def test_host_must_be_a_server_of_the_order(inventory: Path) -> None:
    order = load_order(ORDERS / "supervision.yml")
    with pytest.raises(UsageError) as err:
        plan_register(
            order, "app9.lemoine.example", inventories=[inventory], lab=False, server=None
        )
    assert problems(err) == (
        "HOST: 'app9.lemoine.example' is not a server of order BDC-2027-0104 "
        "(app1.lemoine.example, app2.lemoine.example)"
    )


def test_a_monitoring_server_is_required(bare_inventory: Path) -> None:
    order = load_order(ORDERS / "supervision.yml")
    with pytest.raises(UsageError) as err:
        plan_register(
            order, "app1.lemoine.example", inventories=[bare_inventory], lab=False, server=None
        )
    assert "--server: required: the inventories have no host in the group" in problems(err)
    with pytest.raises(UsageError) as err:
        plan_register(
            order,
            "app1.lemoine.example",
            inventories=[bare_inventory],
            lab=False,
            server="mon9.alteo.example",
        )
    assert "--server: 'mon9.alteo.example' is in none of the inventories" in problems(err)


def test_lab_needs_a_monitoring_server_named() -> None:
    order = load_order(ORDERS / "supervision.yml")
    with pytest.raises(UsageError) as err:
        plan_register(order, "app1.lemoine.example", inventories=[], lab=True, server=None)
    assert problems(err) == "--server: required with --lab (the lab host that runs monitoring)"
    with pytest.raises(UsageError):
        plan_deregister("app1.lemoine.example", inventories=[], lab=True, server=None)


def test_an_inventory_or_the_lab_is_required(tmp_path: Path) -> None:
    order = load_order(ORDERS / "supervision.yml")
    with pytest.raises(UsageError) as err:
        plan_register(order, "app1.lemoine.example", inventories=[], lab=False, server=None)
    assert problems(err) == "--inventory: required unless --lab is given"
    missing = tmp_path / "missing.yml"
    with pytest.raises(UsageError) as err:
        plan_deregister("app1.lemoine.example", inventories=[missing], lab=False, server=None)
    assert problems(err) == f"--inventory: {missing} does not exist"


def test_deregister_plan(inventory: Path) -> None:
    plan = plan_deregister("app1.lemoine.example", inventories=[inventory], lab=False, server=None)
    assert plan.playbook == "monitor-deregister.yml"
    assert plan.extravars == {"hostops_monitor_servers": ["app1.lemoine.example"]}
    assert SERVERS_GROUP not in plan.hosts


@pytest.mark.parametrize("name", ["../etc/passwd", "App1.example", "a b", "-x", "x/y", ""])
def test_deregister_refuses_what_is_not_a_server_name(inventory: Path, name: str) -> None:
    with pytest.raises(UsageError) as err:
        plan_deregister(name, inventories=[inventory], lab=False, server=None)
    assert problems(err).startswith(f"HOST: {name!r} is not a server name")


def test_lab_host_names_follow_order_apply() -> None:
    order = load_order(ORDERS / "supervision.yml")
    assert f"{order_host_prefix(order.id)}1" == "bdc-2027-0104-1"
    assert f"{order_host_prefix(order.id)}2" == "bdc-2027-0104-2"


def test_the_command_exits_2_before_touching_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    status = main(
        [
            "monitor",
            "register",
            "lab1.alixans.example",
            "--order",
            str(ORDERS / "none.yml"),
            "--lab",
        ]
    )
    assert status == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "hostops: --order: order BDC-2027-0101 has managed level 'none', which has no monitoring",
        "hostops: --server: required with --lab (the lab host that runs monitoring)",
    ]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "hostops: HOST: required (or --host HOST)"),
        (
            ["app1.lemoine.example", "--host", "app2.lemoine.example"],
            "hostops: --host: 'app2.lemoine.example' differs from HOST 'app1.lemoine.example'",
        ),
    ],
)
def test_the_host_is_given_once_as_host_or_dash_dash_host(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["monitor", "deregister", *args, "--inventory", str(tmp_path / "none.yml")])
    assert status == 2
    assert capsys.readouterr().err.strip() == message


def test_dash_dash_host_and_dash_dash_monitoring_server_as_other_commands_name_them(
    inventory: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same plan as 'deregister HOST --server NAME' (the control: that spelling works)
    from hostops.monitoring import cli as monitor_cli  # noqa: PLC0415
    plans: list[Plan] = []
    monkeypatch.setattr(monitor_cli, "execute", lambda plan, check: plans.append(plan) or 0)  # type: ignore[func-returns-value]  # record, then 0
    for spelling in (
        ["app1.lemoine.example", "--server", "mon1.alteo.example"],
        ["--host", "app1.lemoine.example", "--monitoring-server", "mon1.alteo.example"],
    ):
        assert main(["monitor", "deregister", *spelling, "--inventory", str(inventory)]) == 0
    assert plans[0] == plans[1]
    assert plans[1].hosts["monitoring_servers"] == {"mon1.alteo.example": {}}
