"""The hostops command's front door: exit statuses and messages, no host touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostops.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "orders"


def test_order_validate_good(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "validate", str(EXAMPLES / "none.yml")]) == 0
    assert "valid order BDC-2027-0101" in capsys.readouterr().out


def test_order_validate_bad_names_field_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "o.yml"
    bad.write_text((EXAMPLES / "none.yml").read_text().replace("debian13", "debian11"))
    assert main(["order", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "os:" in err and "debian11" in err


def test_order_not_available_yet_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = tmp_path / "o.yml"
    text = (EXAMPLES / "custom.yml").read_text()
    order.write_text(text.replace("databases: [mariadb, postgresql]", "databases: [mongodb]"))
    assert main(["order", "validate", str(order)]) == 2
    assert "stack.databases: 'mongodb' is not available yet" in capsys.readouterr().err


def test_apply_without_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order", "apply", str(EXAMPLES / "none.yml")]) == 2
    assert "--inventory: required unless --lab" in capsys.readouterr().err


def test_apply_with_unknown_host_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    other.example:\n")
    assert main(["order", "apply", str(EXAMPLES / "none.yml"), "--inventory", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert "servers[0].hostname: 'lab1.alixans.example' is in none of the inventories" in err


def test_unknown_argument_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["order", "frobnicate"])
    assert exit_.value.code == 2
