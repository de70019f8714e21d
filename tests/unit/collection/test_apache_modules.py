"""alteo.hostops.apache_modules' reading of Debian's mods-enabled links: a module is left
alone only when its links are exactly what a2enmod (present) or a2dismod (absent) leave;
every other state goes to community.general.apache2_module (the web role's molecule
scenario and the custom order's tests run it on real hosts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

Loader = Callable[[str], ModuleType]


@pytest.fixture
def apache(tmp_path: Path) -> Path:
    """Debian's layout: proxy (.load and .conf), rewrite (.load only), status (both)."""
    available = tmp_path / "mods-available"
    available.mkdir()
    (tmp_path / "mods-enabled").mkdir()
    for name in ("proxy.load", "proxy.conf", "rewrite.load", "status.load", "status.conf"):
        (available / name).write_text(f"# {name}\n")
    return tmp_path


def enable(root: Path, name: str, *suffixes: str) -> None:
    """What a2enmod does: relative links to mods-available."""
    for suffix in suffixes:
        (root / "mods-enabled" / f"{name}{suffix}").symlink_to(f"../mods-available/{name}{suffix}")


def test_an_enabled_module_is_settled_present_not_absent(
    plugin_module: Loader, apache: Path
) -> None:
    settled = plugin_module("apache_modules").settled
    enable(apache, "proxy", ".load", ".conf")
    enable(apache, "rewrite", ".load")
    # the positive controls: exactly what a2enmod leaves
    assert settled("proxy", "present", str(apache))
    assert settled("rewrite", "present", str(apache))
    assert not settled("proxy", "absent", str(apache))
    assert not settled("rewrite", "absent", str(apache))


def test_a_disabled_module_is_settled_absent_not_present(
    plugin_module: Loader, apache: Path
) -> None:
    settled = plugin_module("apache_modules").settled
    assert settled("status", "absent", str(apache))
    assert not settled("status", "present", str(apache))
    # a module Apache does not have: absent is settled, present is the stock module's
    assert settled("nope", "absent", str(apache))
    assert not settled("nope", "present", str(apache))


@pytest.mark.parametrize(
    "damage",
    [
        "conf link missing",  # a2enmod half done
        "load is a copy",  # not a link: someone's own file
        "load points elsewhere",
        "dangling",
    ],
)
def test_anything_but_a2enmod_links_goes_to_the_stock_module(
    plugin_module: Loader, apache: Path, damage: str
) -> None:
    settled = plugin_module("apache_modules").settled
    enabled = apache / "mods-enabled"
    if damage == "conf link missing":
        enable(apache, "proxy", ".load")
    elif damage == "load is a copy":
        (enabled / "proxy.load").write_text("# proxy.load\n")
        enable(apache, "proxy", ".conf")
    elif damage == "load points elsewhere":
        (enabled / "proxy.load").symlink_to("../mods-available/rewrite.load")
        enable(apache, "proxy", ".conf")
    else:
        enable(apache, "proxy", ".load", ".conf")
        (apache / "mods-available" / "proxy.load").unlink()
    assert not settled("proxy", "present", str(apache))
    # and a leftover link is not 'absent' either
    assert not settled("proxy", "absent", str(apache))


def test_a_conf_link_left_without_its_available_conf_is_not_settled(
    plugin_module: Loader, apache: Path
) -> None:
    settled = plugin_module("apache_modules").settled
    enable(apache, "rewrite", ".load")
    assert settled("rewrite", "present", str(apache))
    (apache / "mods-enabled" / "rewrite.conf").symlink_to("../mods-available/rewrite.conf")
    assert not settled("rewrite", "present", str(apache))


def test_the_mpms_are_acted_on_first_the_disabled_before_the_enabled(
    plugin_module: Loader,
) -> None:
    order = plugin_module("apache_modules").in_order(
        ["mpm_event", "proxy", "rewrite"], ["mpm_prefork", "status", "mpm_worker"]
    )
    assert order == [
        ("absent", ["mpm_prefork", "mpm_worker"]),
        ("present", ["mpm_event"]),
        ("absent", ["status"]),
        ("present", ["proxy", "rewrite"]),
    ]
