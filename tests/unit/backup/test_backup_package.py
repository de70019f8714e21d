"""The backup program as a package (roles/backup/files/hostops_backup) and its launcher
(roles/backup/files/launcher.py): what the servers need of them beyond the logic that
test_backup_script.py checks. The role's installing them on real hosts, an earlier
release's single-file script replaced, is checked by the backup molecule scenarios."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
FILES = ROOT / "roles" / "backup" / "files"
PACKAGE = FILES / "hostops_backup"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(FILES).with_suffix("").parts).removesuffix(".__init__")


def test_the_package_is_split_by_concern() -> None:
    names = {module_name(p) for p in MODULES}
    for expected in (
        "hostops_backup.cli",
        "hostops_backup.__main__",
        "hostops_backup.restic",
        "hostops_backup.metrics",
        "hostops_backup.config",
        "hostops_backup.engines.mariadb",
        "hostops_backup.engines.postgresql",
        "hostops_backup.engines.mongodb",
    ):
        assert expected in names


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_each_module_imports_the_standard_library_only(path: Path) -> None:
    """The servers get no pip: every import is the package's own or the stdlib's."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            tops = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            tops = [(node.module or "").split(".")[0]]
        else:
            continue
        for top in tops:
            assert top in sys.stdlib_module_names or top == "__future__", f"{path}: {top}"


def test_each_module_imports_on_its_own() -> None:
    """No import cycle: any module can be the first one imported (each in turn, from a
    clean slate, in one fresh interpreter)."""
    names = [module_name(p) for p in MODULES if p.name != "__main__.py"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('hostops_backup')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(" + repr(names) + "))\n"
    )
    proc = run("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"imported {len(names)}\n"
    assert len(names) >= 15


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=FILES,
        env={"PYTHONPATH": str(FILES), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("entry", [("-m", "hostops_backup"), (str(FILES / "launcher.py"),)])
def test_the_entry_points_keep_the_command_line_and_exit_codes(
    entry: tuple[str, ...], tmp_path: Path
) -> None:
    """python3 -m hostops_backup and the launcher (run here with the package on
    PYTHONPATH, as its LIB_DIR is on the servers): the same verbs, exit 2 on a bad
    configuration or argument, the report on stdout."""
    shown = run(*entry, "--help")
    assert shown.returncode == 0, shown.stderr
    for verb in ("run", "finish", "check", "snapshots", "restore-db", "restore-files", "verify"):
        assert verb in shown.stdout
    assert shown.stdout.startswith("usage: hostops-backup ")
    missing = tmp_path / "missing.json"
    refused = run(*entry, "--config", str(missing), "--json", "snapshots")
    assert refused.returncode == 2
    assert f"hostops-backup: ERROR: {missing}: cannot read the configuration" in refused.stderr
    assert json.loads(refused.stdout)["ok"] is False
    bad_verb = run(*entry, "--config", str(missing), "prune")
    assert bad_verb.returncode == 2 and "invalid choice: 'prune'" in bad_verb.stderr


def test_the_launcher_names_the_directory_the_role_installs_the_package_in() -> None:
    tree = ast.parse((FILES / "launcher.py").read_text())
    lib_dir = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "LIB_DIR"
        and isinstance(node.value, ast.Constant)
    )
    role_vars = yaml.safe_load((ROOT / "roles" / "backup" / "vars" / "main.yml").read_text())
    assert lib_dir == role_vars["__backup_lib_dir"]
    assert (FILES / "launcher.py").read_text().startswith("#!/usr/bin/python3\n")
