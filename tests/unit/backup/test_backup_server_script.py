"""The backup host's script (roles/backup_server/files/hostops_backup_server.py): its pure
logic. Its work against restic is checked on lab hosts by the backup molecule scenarios."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def load_script() -> ModuleType:
    path = ROOT / "roles" / "backup_server" / "files" / "hostops_backup_server.py"
    spec = importlib.util.spec_from_file_location("hostops_backup_server_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hs = load_script()


def config(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "root": "/srv/restic-rest",
        "repos_dir": "/etc/hostops-backup-server/repos",
        "keys_dir": "/etc/hostops-backup-server/keys",
        "user": "restic-rest-server",
        "timezone": "Europe/Paris",
    }
    data.update(changes)
    return data


def test_the_role_written_configuration_is_accepted() -> None:
    cfg = hs.parse_config(config(check_subset_parts=4, _managed="comment"))
    assert cfg.root == Path("/srv/restic-rest")
    assert cfg.check_subset_parts == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Europe/Pariss"}, "unknown time zone"),
        ({"check_subset_parts": 0}, "check_subset_parts"),
        ({"check_subset_parts": True}, "check_subset_parts"),
        ({"user": ""}, "user: required text"),
        ({"surprise": 1}, "unknown configuration keys: surprise"),
    ],
)
def test_bad_configuration_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(hs.ConfigError, match=message) as caught:
        hs.parse_config(config(**changes))
    assert caught.value.status == 2


@pytest.mark.parametrize("days", [0, -1, True, False, "28", 3651, None])
def test_a_retention_below_one_day_is_refused(days: Any) -> None:
    """restic reads --keep-daily 0 as "no policy" and keeps everything, with exit 0."""
    cfg = hs.parse_config(config())
    with pytest.raises(hs.ConfigError, match="retention_days must be 1 to 3650"):
        hs.parse_repo("web01.example", {"retention_days": days}, cfg)


def test_a_repository_is_its_servers_directory_and_key() -> None:
    cfg = hs.parse_config(config())
    repo = hs.parse_repo("web01.example", {"retention_days": 7}, cfg)
    assert repo.path == Path("/srv/restic-rest/web01.example")
    assert repo.key_file == Path("/etc/hostops-backup-server/keys/web01.example")
    with pytest.raises(hs.ConfigError, match="not a repository name"):
        hs.parse_repo("../etc", {"retention_days": 7}, cfg)


def test_incomplete_snapshots_and_their_markers_are_found() -> None:
    bad = "d" * 64
    items = [
        {"id": bad, "tags": ["hostops", "files"]},
        {"id": "e" * 64, "tags": ["hostops-incomplete", f"incomplete:{bad}"]},
        {"id": "f" * 64, "tags": ["hostops-incomplete", "incomplete:not-an-id"]},
    ]
    marked, markers = hs.incomplete_ids(items)
    assert marked == {bad}
    short, _ = hs.incomplete_ids(
        [{"id": "1" * 64, "tags": ["hostops-incomplete", "incomplete:abcd1234"]}]
    )
    assert short == {"abcd1234"}  # restic 0.14 reports the short id
    assert markers == {"e" * 64, "f" * 64}


def test_metrics_are_rendered_per_repository_and_kind(tmp_path: Path) -> None:
    cfg = hs.parse_config(config(root=str(tmp_path), metrics_file=str(tmp_path / "m.prom")))
    data = {
        "repos": {
            "web01.example": {
                "last_snapshot": {"dumps": 1700000000.5, "files": 1700003600.0},
                "check_failed": 1,
                "size": 1234,
            }
        },
        "runs": {"check": {"failed": 1, "running": 0}},
    }
    hs.publish(cfg, data)
    text = (tmp_path / "m.prom").read_text()
    assert (
        'hostops_backup_repository_last_snapshot_timestamp_seconds{repository="web01.example",'
        'kind="dumps"} 1700000000.500'
    ) in text
    assert 'hostops_backup_repository_check_failed{repository="web01.example"} 1' in text
    assert 'hostops_backup_repository_size_bytes{repository="web01.example"} 1234' in text
    assert 'hostops_backup_server_run_failed{kind="check"} 1' in text
    assert "hostops_backup_server_disk_free_bytes " in text
