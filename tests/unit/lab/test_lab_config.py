"""The lab's pure parts: mirrors read from apt sources, the subnet check, the inventory."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest
import yaml

from hostops.core.errors import HostopsError, UsageError
from hostops.lab import nspawn as lab


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_mirrors_from_deb822_sources(tmp_path: Path) -> None:
    write(
        tmp_path / "sources.list.d" / "debian.sources",
        "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://security.mirror.test/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src\nURIs: http://src.test/debian\nSuites: bookworm\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.test/debian\nSuites: bookworm\n",
    )
    write(tmp_path / "sources.list.d" / "other.list", "deb https://vendor.test/apt stable main\n")
    mirrors = lab.parse_apt_sources("bookworm", tmp_path)
    assert mirrors == [
        lab.Mirror("http://mirror.test/debian", security=False),
        lab.Mirror("http://security.mirror.test/debian-security", security=True),
    ]


def test_mirrors_from_one_line_sources(tmp_path: Path) -> None:
    write(
        tmp_path / "sources.list",
        "# comment\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://m.test/debian/"
        " bookworm main\n"
        "deb http://m.test/debian-security bookworm-security main # trailing\n"
        "deb-src http://m.test/debian bookworm main\n",
    )
    mirrors = lab.parse_apt_sources("bookworm", tmp_path)
    assert [(m.url, m.security) for m in mirrors] == [
        ("https://m.test/debian", False),
        ("http://m.test/debian-security", True),
    ]
    # lab hosts ask the cache in plain http; the cache fetches the https backend
    assert mirrors[0].lab_url == "http://m.test/debian"
    assert mirrors[0].prefix == "m.test/debian"


def test_subnet_overlapping_a_route_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        lab, "machine_routes", lambda: [(ipaddress.ip_network("192.0.2.0/24"), "eth0")]
    )
    monkeypatch.setattr(lab, "nameservers", lambda: [ipaddress.ip_address("10.0.0.2")])
    with pytest.raises(UsageError) as err:
        lab.check_subnet(ipaddress.IPv4Network("192.0.2.0/25"))
    assert "--subnet: 192.0.2.0/25 overlaps this machine's route 192.0.2.0/24" in str(err.value)
    with pytest.raises(UsageError) as err:
        lab.check_subnet(ipaddress.IPv4Network("10.0.0.0/8"))
    assert "contains this machine's DNS resolver 10.0.0.2" in str(err.value)
    lab.check_subnet(ipaddress.IPv4Network("172.29.77.0/24"))  # no overlap: accepted


def test_the_lab_bridge_own_route_is_not_an_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        lab, "machine_routes", lambda: [(ipaddress.ip_network("172.29.77.0/24"), lab.bridge_name())]
    )
    monkeypatch.setattr(lab, "nameservers", lambda: [])
    lab.check_subnet(ipaddress.IPv4Network("172.29.77.0/24"))


def test_inventory_of_selected_hosts(tmp_path: Path) -> None:
    state = lab.LabState(bridge_address="172.29.77.1", acng_port=3149)
    hosts = [
        lab.LabHost("b1", "bookworm", "172.29.77.11", "hostops-b1", "hostops-v11", "/x"),
        lab.LabHost("t1", "trixie", "172.29.77.10", "hostops-t1", "hostops-v10", "/y"),
    ]
    path = tmp_path / "inv.yml"
    lab.write_inventory(path, hosts, state, Path("/k/id"), group="lab_scenario")
    data = yaml.safe_load(path.read_text())["all"]["children"]
    assert data["lab"]["hosts"]["t1"] == {
        "ansible_host": "172.29.77.10",
        "hostops_lab_release": "trixie",
        "hostops_fqdn": "t1.lab.alixans.example",
    }
    assert data["lab"]["vars"]["ansible_ssh_private_key_file"] == "/k/id"
    assert data["lab"]["vars"]["hostops_apt_proxy"] == "http://172.29.77.1:3149"
    # a bridge of this machine: Mitogen's SSH stream uncompressed (its default is "yes")
    assert data["lab"]["vars"]["mitogen_ssh_compression"] is False
    assert set(data["bookworm"]["hosts"]) == {"b1"}
    assert set(data["trixie"]["hosts"]) == {"t1"}
    assert set(data["lab_scenario"]["hosts"]) == {"b1", "t1"}


def test_state_round_trip(tmp_path: Path) -> None:
    state = lab.LabState(subnet="172.29.77.0/24", bridge_address="172.29.77.1", acng_pid=42)
    state.hosts["t1"] = lab.LabHost("t1", "trixie", "172.29.77.10", "n", "v", "/r", pid=7)
    state.save(tmp_path / "state.json")
    again = lab.LabState.load(tmp_path / "state.json")
    assert again == state


def test_corrupt_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(HostopsError, match="unreadable lab state"):
        lab.LabState.load(tmp_path / "state.json")


def test_process_matches_refuses_reused_pids() -> None:
    assert lab.process_matches(os.getpid(), "python")
    assert not lab.process_matches(os.getpid(), "systemd-nspawn")
    assert not lab.process_matches(0, "")


def test_lab_id_names_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTOPS_LAB_ID", "ci")
    assert lab.bridge_name() == "ci-br0"
    assert lab.LabPaths.default().state_dir == Path("/var/lib/hostops-lab-ci")
    monkeypatch.setenv("HOSTOPS_LAB_ID", "Bad-Id")
    with pytest.raises(UsageError, match="HOSTOPS_LAB_ID: 'Bad-Id'"):
        lab.bridge_name()


def test_bridge_mac_is_stable_and_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTOPS_LAB_ID", "ci")
    mac = lab.bridge_mac()
    assert mac == lab.bridge_mac()
    first = int(mac.split(":")[0], 16)
    assert first & 0x02 and not first & 0x01  # locally administered, unicast
    monkeypatch.setenv("HOSTOPS_LAB_ID", "hostops")
    assert lab.bridge_mac() != mac


def test_an_orders_fqdn_names_the_lab_host_it_was_mapped_onto() -> None:
    state = lab.LabState(
        hosts={
            name: lab.LabHost(name, "trixie", address, f"ns-{name}", f"ve-{name}", "/r")
            for name, address in (("bdc-1", "172.29.77.100"), ("bdc-backup1", "172.29.77.101"))
        }
    )
    state.hosts["bdc-1"].aliases = ["web01.martin.example"]
    assert state.host_name("web01.martin.example") == "bdc-1"
    assert state.host_name("bdc-1") == "bdc-1"  # its own name still works
    assert state.host_name("bdc-backup1") == "bdc-backup1"
    assert state.host_name("mail.martin.example") == "mail.martin.example"  # unknown: as given
    # the alias is the host's FQDN in the lab inventory (hostops_fqdn), the rest keep theirs
    assert state.hosts["bdc-1"].fqdn == "web01.martin.example"
    assert state.hosts["bdc-backup1"].fqdn == f"bdc-backup1.{lab.DOMAIN}"


def test_aliases_survive_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = lab.LabState(
        hosts={"bdc-1": lab.LabHost("bdc-1", "trixie", "172.29.77.100", "n", "v", "/r")}
    )
    state.hosts["bdc-1"].aliases = ["web01.martin.example"]
    state.save(path)
    assert lab.LabState.load(path).host_name("web01.martin.example") == "bdc-1"
    # a state file written before aliases existed still loads
    data = json.loads(path.read_text())
    del data["hosts"]["bdc-1"]["aliases"]
    path.write_text(json.dumps(data))
    assert lab.LabState.load(path).hosts["bdc-1"].aliases == []


def test_inotify_instances_raised_for_many_hosts_never_lowered(tmp_path: Path) -> None:
    knob = tmp_path / "max_user_instances"
    knob.write_text("128\n")
    lab.ensure_inotify_instances(knob)
    assert int(knob.read_text()) == lab.MIN_INOTIFY_INSTANCES
    knob.write_text("8192\n")
    lab.ensure_inotify_instances(knob)
    assert int(knob.read_text()) == 8192
