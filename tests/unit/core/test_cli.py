"""The hostops command's front door: exit statuses and messages, no host touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostops.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "orders"


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


@pytest.mark.parametrize(
    "case",
    [
        # a lab monitoring server's name, checked before any host is touched
        (
            "supervision.yml",
            ["--monitoring-server", "Mon 1"],
            "--monitoring-server: 'Mon 1' is not a lab host name",
        ),
        # a --limit that is not a server of the order, refused before the lab boots
        (
            "custom.yml",
            ["--limit", "db9.martin.example"],
            "--limit: 'db9.martin.example' is not one of the order's servers",
        ),
    ],
)
def test_order_apply_options_are_checked_before_the_lab_boots(
    case: tuple[str, list[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTOPS_LAB_DIR", str(tmp_path / "lab"))
    order, option, problem = case
    assert main(["order", "apply", str(EXAMPLES / order), "--lab", *option]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "lab").exists()
    assert not (tmp_path / "state").exists()


def test_verbose_is_counted_before_or_after_the_command() -> None:
    from hostops.cli import build_parser  # noqa: PLC0415

    parser = build_parser()
    assert parser.parse_args(["-v", "order", "list"]).verbose == 1
    assert parser.parse_args(["order", "apply", "o.yml", "-vv"]).verbose == 2
    assert parser.parse_args(["order", "list"]).verbose == 0


def test_the_command_table_names_the_module_of_every_command() -> None:
    import argparse  # noqa: PLC0415
    import importlib  # noqa: PLC0415

    from hostops.cli import COMMAND_MODULES, COMMANDS  # noqa: PLC0415

    registered = {}
    for name in COMMAND_MODULES:
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(subparsers)
        registered.update(dict.fromkeys(subparsers.choices, name))
    assert registered == COMMANDS


IMPORTS_PROBE = """
import json, sys
from hostops import cli
try:
    status = cli.main(sys.argv[1:])
except SystemExit as stop:
    status = stop.code
loaded = [name for name in cli.COMMAND_MODULES if name in sys.modules]
print(json.dumps({"status": status, "loaded": loaded}))
"""


def imports_of(*argv: str) -> tuple[int, list[str], str]:
    """A hostops command line run in a fresh interpreter: its exit status, the command
    modules it imported, and its output."""
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["status"], result["loaded"], done.stdout + done.stderr


def test_a_command_imports_its_own_module_and_help_every_one() -> None:
    from hostops.cli import COMMAND_MODULES, COMMANDS  # noqa: PLC0415

    order = str(EXAMPLES / "none.yml")
    status, loaded, output = imports_of("order", "validate", order)
    assert status == 0 and "valid order BDC-2027-0101" in output
    assert "hostops.orders.cli" in loaded
    assert "hostops.sla.cli" not in loaded and "hostops.lab.cli" not in loaded, loaded
    assert imports_of("-v", "order", "validate", order)[:2] == (0, loaded)
    status, own, output = imports_of("sla", "--help")
    assert status == 0 and "hostops sla" in output and "hostops.orders.cli" not in own
    # every command's module (the controls): help before the command, no command, an
    # unknown one; their messages list every command
    cases: tuple[tuple[list[str], int], ...] = (
        (["--help"], 0), (["-h", "order"], 0), (["--he", "order"], 0), (["-vh", "order"], 0),
        ([], 2), (["ordre"], 2),
    )  # fmt: skip
    for argv, expected in cases:
        status, every, output = imports_of(*argv)
        assert status == expected, (argv, output)
        assert every == list(COMMAND_MODULES), argv
        if argv:
            assert all(command in output for command in COMMANDS), (argv, output)
