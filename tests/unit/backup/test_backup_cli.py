"""``hostops backup``: arguments checked before any host is touched, and ``--at`` dates."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hostops.backup import cli as backup_cli
from hostops.core.errors import UsageError

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=PARIS)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hostops")
    backup_cli.register(top.add_subparsers(dest="command", required=True))
    return top


def parse(*argv: str) -> argparse.Namespace:
    return parser().parse_args(["backup", *argv])


# --- --at ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest", "latest"),
        ("LAST", "latest"),
        ("today", "2026-11-26"),
        ("yesterday", "2026-11-25"),
        ("2026-11-25", "2026-11-25"),
        ("2026-11-26", "2026-11-26"),  # today: the last backup of today so far
        ("2024-02-29", "2024-02-29"),  # a leap day
        # a date and time without offset is Paris time: CET in winter, CEST in summer
        ("2026-11-25 22:00", "2026-11-25T22:00:00+01:00"),
        ("2026-11-25T22:00:30", "2026-11-25T22:00:30+01:00"),
        ("2026-07-14T22:00", "2026-07-14T22:00:00+02:00"),
        ("2026-11-25T21:00:00Z", "2026-11-25T21:00:00+00:00"),
        ("2026-11-25T23:00:00+01:00", "2026-11-25T23:00:00+01:00"),
        # the hour the clocks go back happens twice: an offset says which
        ("2026-10-25 02:30+02:00", "2026-10-25T02:30:00+02:00"),
        ("2026-10-25 02:30+01:00", "2026-10-25T02:30:00+01:00"),
        ("2026-11-26 10:00", "2026-11-26T10:00:00+01:00"),  # now is not the future
    ],
)
def test_at_accepted(text: str, expected: str) -> None:
    assert backup_cli.parse_at(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-27", "is in the future"),
        ("2030-01-01", "is in the future"),
        ("2026-11-26 10:00:01", "is in the future"),
        ("2026-11-26T09:30:00Z", "is in the future"),  # 10:30 in Paris
        ("2026-02-30", "is not a date"),
        ("2026-13-01", "is not a date"),
        ("2026-11-25T25:00", "is not a date and time"),
        ("2026-03-29 02:30", "does not exist in Paris"),  # the clocks skip 02:00-03:00
        ("2026-10-25 02:30", "happens twice in Paris"),
        ("25/11/2026", "is not latest, today"),
        ("1 day ago", "is not latest, today"),
        ("", "is not latest, today"),
        ("2026-11-25T22:00+1", "is not latest, today"),
    ],
)
def test_at_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        backup_cli.parse_at(text, NOW)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"--at: {text!r}")
    assert message in caught.value.problems[0]


# --- restore's arguments ---------------------------------------------------------------------


WHERE = ("--host", "web01.example.fr", "--inventory", "inv.yml")


def request(*argv: str) -> backup_cli.RestoreRequest:
    return backup_cli.restore_request(parse("restore", *WHERE, *argv), NOW)


def problems(*argv: str) -> list[str]:
    with pytest.raises(UsageError) as caught:
        request(*argv)
    return caught.value.problems


def test_restore_a_database_as_a_new_name() -> None:
    req = request("--database", "shop", "--at", "2026-11-25", "--as", "shop_copy")
    assert req == backup_cli.RestoreRequest(at="2026-11-25", database="shop", as_name="shop_copy")
    assert req.extravars(snapshot=None, confirm=False, replace=False) == {
        "hostops_backup_restore": {
            "confirm": False,
            "replace": False,
            "at": "2026-11-25",
            "database": "shop",
            "as": "shop_copy",
        }
    }
    # the restore itself names the snapshot the plan chose, not the date again
    confirmed = req.extravars(snapshot="1a2b3c4d", confirm=True, replace=True)
    assert confirmed["hostops_backup_restore"]["snapshot"] == "1a2b3c4d"
    assert "at" not in confirmed["hostops_backup_restore"]


def test_restore_files_normalises_the_paths() -> None:
    req = request("--path", "/srv//www/./site/", "--to", "/srv/restored/", "--at", "latest")
    assert (req.path, req.to, req.at) == ("/srv/www/site", "/srv/restored", "latest")
    assert req.extravars(snapshot=None, confirm=False, replace=False)["hostops_backup_restore"] == {
        "confirm": False,
        "replace": False,
        "at": "latest",
        "path": "/srv/www/site",
        "to": "/srv/restored",
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--at", "latest"), "give either --database NAME"),
        (
            ("--database", "shop", "--path", "/srv", "--to", "/x", "--at", "latest"),
            "give either --database NAME",
        ),
        (("--path", "/srv/www", "--at", "latest"), "--to: required with --path"),
        (("--path", "srv/www", "--to", "/x", "--at", "latest"), "--path: 'srv/www' is not an abs"),
        (("--path", "/srv/www", "--to", "/srv/../etc", "--at", "latest"), "contains '..'"),
        (("--path", "/etc", "--to", "/etc/", "--at", "latest"), "is a system directory"),
        (("--path", "/srv", "--to", "/", "--at", "latest"), "is a system directory"),
        (("--path", "/srv/www", "--to", "/x", "--as", "y", "--at", "latest"), "only with --data"),
        (("--database", "shop", "--to", "/x", "--at", "latest"), "--to: only with --path"),
        (("--database", "shop;drop", "--at", "latest"), "is not a database name"),
        (("--database", "a" * 65, "--at", "latest"), "is not a database name"),
        (("--database", "shop", "--as", "my db", "--at", "latest"), "--as: 'my db' is not a"),
        (("--database", "shop", "--as", "hostops_verify_x", "--at", "latest"), "kept for verify"),
        (("--database", "shop", "--at", "tomorrow"), "--at: 'tomorrow' is not latest"),
    ],
)
def test_restore_refused(argv: tuple[str, ...], expected: str) -> None:
    found = problems(*argv)
    assert any(expected in line for line in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems("--database", "bad name", "--as", "x y", "--at", "2099-01-01")
    assert len(found) == 3
    assert [line.split(":")[0] for line in found] == ["--at", "--database", "--as"]


@pytest.mark.parametrize(
    "argv",
    [
        ("list", "--host", "h"),  # neither --inventory nor --lab
        ("list", "--host", "h", "--lab", "--inventory", "x"),  # both
        ("list", "--inventory", "x"),  # no --host
        ("run", "--host", "h", "--lab", "--kind", "logs"),
        ("restore", "--host", "h", "--lab", "--database", "x"),  # no --at
        ("restore", "--host", "h", "--lab", "--at", "latest", "--engine", "mongodb"),
    ],
)
def test_argparse_refuses(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(*argv)
    assert caught.value.code == 2


# --- the server and its inventory ------------------------------------------------------------


def test_target_must_be_in_the_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web01.example.fr:\n      ansible_host: 192.0.2.10\n")
    found = backup_cli.resolve_target(parse("list", *WHERE[:2], "--inventory", str(inventory)))
    assert found == backup_cli.Target("web01.example.fr", [inventory])
    with pytest.raises(UsageError) as caught:
        backup_cli.resolve_target(
            parse("list", "--host", "db02.example.fr", "--inventory", str(inventory))
        )
    assert caught.value.problems == [
        f"--host: 'db02.example.fr' is not a host of the inventory ({inventory})"
    ]
    # Ansible's implicit localhost is no host of the inventory (it is the controller)
    for name in ("localhost", "127.0.0.1"):
        with pytest.raises(UsageError) as caught:
            backup_cli.resolve_target(parse("list", "--host", name, "--inventory", str(inventory)))
        assert caught.value.problems == [
            f"--host: {name!r} is not a host of the inventory ({inventory})"
        ]


def test_missing_inventory_and_bad_host_are_reported_together(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(UsageError) as caught:
        backup_cli.resolve_target(parse("list", "--host", "web 01", "--inventory", str(missing)))
    assert caught.value.problems == [
        "--host: 'web 01' is not a host name",
        f"--inventory: {missing} does not exist",
    ]


# --- what a restore says -----------------------------------------------------------------------


def plan(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "action": "restore-database",
        "engine": "mariadb",
        "database": "shop",
        "target": "shop",
        "replaces_live_data": True,
        "snapshot": {"time": "2026-11-25T22:00:07+01:00", "short_id": "1a2b3c4d"},
    }
    return {**base, **changes}


def test_a_restore_over_live_data_says_what_is_lost() -> None:
    lines = backup_cli.describe_plan("web01", plan())
    assert lines[0] == (
        "web01: restore mariadb database 'shop' from the backup of "
        "Wed 2026-11-25 22:00:07 CET (snapshot 1a2b3c4d)"
    )
    assert "REPLACES the live database 'shop'" in lines[1]
    assert "everything written to it after Wed 2026-11-25 22:00:07 CET is lost" in lines[1]


def test_a_restore_under_a_new_name_touches_nothing_live() -> None:
    lines = backup_cli.describe_plan("web01", plan(target="shop_copy", replaces_live_data=False))
    assert (
        lines[1]
        == "  into database 'shop_copy', which does not exist yet (no live data is touched)"
    )
    files = plan(
        action="restore-files",
        path="/srv/www",
        to="/srv/www",
        snapshot={"time": "2026-07-01T23:00:00+02:00", "short_id": "5e6f7a8b"},
    )
    lines = backup_cli.describe_plan("web01", files)
    assert "backup of Wed 2026-07-01 23:00:00 CEST" in lines[0]
    assert "REPLACES the live /srv/www" in lines[1]


# --- restore --from-host: a lost server's backups, with its escrowed credentials ----------------


def escrow(state: Path, host: str, files: tuple[str, ...] = backup_cli.ESCROW_FILES) -> Path:
    folder = state / "backup-keys" / host
    folder.mkdir(parents=True, mode=0o700)
    for name in files:
        (folder / name).write_text("x\n")
    return folder


def test_restore_from_a_lost_host_passes_it_and_the_key_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    escrow(tmp_path, "lost.example")
    args = parse(
        "restore", "--host", "new.example", "--lab", "--database", "shop", "--at", "latest",
        "--from-host", "lost.example",
    )  # fmt: skip
    request = backup_cli.restore_request(args, NOW)
    assert request.from_host == "lost.example"
    variables = request.extravars(snapshot=None, confirm=False, replace=False)
    assert variables["hostops_backup_restore"]["from_host"] == "lost.example"
    assert variables["backup_key_store"] == str(tmp_path.resolve() / "backup-keys")
    # no secret travels in the run's variables: the playbook reads the key store itself
    assert "password" not in repr(variables)


@pytest.mark.parametrize(
    ("from_host", "files", "expected"),
    [
        ("nowhere.example", None, "--from-host: no escrowed credentials for 'nowhere.example'"),
        ("lost.example", ("restic-password",), "(missing: rest-password, repository.json, ca.pem)"),
        ("new.example", backup_cli.ESCROW_FILES, "is the --host itself"),
        ("bad;name", None, "--from-host: 'bad;name' is not a host name"),
    ],
)
def test_restore_from_host_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    from_host: str,
    files: tuple[str, ...] | None,
    expected: str,
) -> None:
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path))
    if files is not None:
        escrow(tmp_path, from_host, files)
    args = parse(
        "restore", "--host", "new.example", "--lab", "--database", "shop", "--at", "latest",
        "--from-host", from_host,
    )  # fmt: skip
    with pytest.raises(UsageError) as caught:
        backup_cli.restore_request(args, NOW)
    assert any(expected in line for line in caught.value.problems), caught.value.problems
