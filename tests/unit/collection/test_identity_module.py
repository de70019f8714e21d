"""alteo.hostops.identity's reading of the host's name and time zone: left alone only when
exactly as asked; anything else goes to the stock modules (the base role's molecule
scenarios and the orders' tests run it on real hosts, a changed name and zone included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

Loader = Callable[[str], ModuleType]


@pytest.mark.parametrize(
    ("link", "zone", "expected"),
    [
        # as timedatectl writes it, and as older tzdata did (the positive controls)
        ("../usr/share/zoneinfo/Europe/Paris", "Europe/Paris", True),
        ("/usr/share/zoneinfo/Europe/Paris", "Europe/Paris", True),
        ("/usr/share/zoneinfo/Etc/UTC", "Etc/UTC", True),
        # the stock module's to judge
        ("/usr/share/zoneinfo/Etc/UTC", "Europe/Paris", False),
        ("/usr/share/zoneinfo/Europe/Paris", "Paris", False),
        ("/usr/share/zoneinfo/Europe/Paris", "Europe", False),
        ("/usr/share/zoneinfo/right/Europe/Paris", "Europe/Paris", False),
        ("/usr/share/zoneinfo/../zoneinfo/Etc/UTC", "../zoneinfo/Etc/UTC", False),
        ("/usr/share/zoneinfo//Etc/UTC", "/Etc/UTC", False),
        (None, "Etc/UTC", False),
        ("/usr/share/zoneinfo/", "", False),
    ],
)
def test_a_zone_is_settled_only_when_the_link_names_it(
    plugin_module: Loader, tmp_path: Path, link: str | None, zone: str, expected: bool
) -> None:
    for name in ("Europe/Paris", "Etc/UTC"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"TZif2")
    assert plugin_module("identity").zone_settled(link, zone, str(tmp_path)) is expected


def test_a_zone_without_its_file_is_the_stock_modules(
    plugin_module: Loader, tmp_path: Path
) -> None:
    module = plugin_module("identity")
    (tmp_path / "Etc").mkdir()
    (tmp_path / "Etc" / "UTC").write_bytes(b"TZif2")
    assert module.zone_settled("/usr/share/zoneinfo/Etc/UTC", "Etc/UTC", str(tmp_path))
    assert not module.zone_settled("/usr/share/zoneinfo/Etc/Nowhere", "Etc/Nowhere", str(tmp_path))


def test_the_files_are_read_as_written(plugin_module: Loader, tmp_path: Path) -> None:
    module = plugin_module("identity")
    (tmp_path / "hostname").write_text("web01\n")
    (tmp_path / "localtime").symlink_to("../usr/share/zoneinfo/Europe/Paris")
    (tmp_path / "copy").write_text("TZif2")
    assert module.read_hostname(str(tmp_path / "hostname")) == "web01"
    assert module.read_hostname(str(tmp_path / "none")) is None
    assert module.read_link(str(tmp_path / "localtime")) == "../usr/share/zoneinfo/Europe/Paris"
    # a copied zone file (not a link) is not read as any zone
    assert module.read_link(str(tmp_path / "copy")) is None
