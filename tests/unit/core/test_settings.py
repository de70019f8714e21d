"""hostops's configuration file and its environment overrides (src/hostops/core/settings.py):
a bad file is refused with exit 2 naming the file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostops.cli import main
from hostops.core import settings
from hostops.core.errors import UsageError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yml"
    monkeypatch.setenv("HOSTOPS_CONFIG", str(path))
    monkeypatch.delenv("HOSTOPS_STATE_DIR", raising=False)
    return path


def test_without_a_file_the_state_is_in_var_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTOPS_CONFIG", raising=False)
    monkeypatch.delenv("HOSTOPS_STATE_DIR", raising=False)
    monkeypatch.setattr(settings, "DEFAULT_CONFIG", Path("/nonexistent/hostops.yml"))
    assert settings.state_dir() == Path("/var/lib/hostops")
    assert settings.settings().inventories == ()


def test_the_file_sets_state_inventories_and_monitoring_server(config: Path) -> None:
    config.write_text(
        "state_dir: /srv/hostops\ninventories: [/etc/hostops/inv]\nmonitoring_server: mon1\n"
    )
    found = settings.settings()
    assert found.state_dir == Path("/srv/hostops")
    assert found.inventories == (Path("/etc/hostops/inv"),)
    assert found.monitoring_server == "mon1"
    assert settings.inventories_or_default([]) == [Path("/etc/hostops/inv")]
    assert settings.inventories_or_default([Path("x.yml")]) == [Path("x.yml")]


def test_the_environment_wins_over_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text("state_dir: /srv/hostops\n")
    monkeypatch.setenv("HOSTOPS_STATE_DIR", "/srv/elsewhere")
    assert settings.state_dir() == Path("/srv/elsewhere")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("statedir: /srv\n", "'statedir' is not a setting"),
        ("state_dir: relative/path\n", "state_dir: 'relative/path' must be an absolute path"),
        ("inventories: {a: 1}\n", "inventories: {'a': 1} must be a list of paths"),
        ("monitoring_server: ''\n", "monitoring_server: '' must be a host name"),
        ("- a list\n", "must be a mapping of settings"),
        ("state_dir: [unclosed\n", "not valid YAML (line"),
    ],
)
def test_a_bad_file_is_refused_naming_key_and_value(
    config: Path, text: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(text)
    with pytest.raises(UsageError) as err:
        settings.settings()
    assert named in str(err.value) and str(config) in str(err.value)
    # the same through the command: exit 2, one line, no traceback
    assert main(["order", "list"]) == 2
    assert named in capsys.readouterr().err


def test_a_config_that_is_not_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_CONFIG", str(tmp_path))
    with pytest.raises(UsageError, match="is a directory"):
        settings.settings()
    monkeypatch.setenv("HOSTOPS_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(UsageError, match=r"HOSTOPS_CONFIG: .*missing\.yml. does not exist"):
        settings.settings()


def test_a_relative_state_dir_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", "state")
    with pytest.raises(UsageError, match="HOSTOPS_STATE_DIR: 'state' must be an absolute path"):
        settings.state_dir()
