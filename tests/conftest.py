"""Shared fixtures: where the repository is, and how to run the hostops command."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def hostops(
    *args: str, timeout: float = 900, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hostops`` command from the repository root."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(BIN / "hostops"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"hostops {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def collection_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A collection root of its own (HOSTOPS_ROOT, its own state directory) for real
    ansible-playbook runs against localhost: galaxy.yml, ansible.cfg, an inventory of
    localhost, an empty playbooks/, and this checkout linked in as the collection (its
    plugins, the strategy among them), as scripts/setup links a checkout in."""
    root = tmp_path / "collection"
    (root / "playbooks").mkdir(parents=True)
    (root / "galaxy.yml").write_text("namespace: alteo\nname: hostops\nversion: 0.0.1\n")
    (root / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    (root / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_python_interpreter: auto_silent\n"
    )
    link = root / "collections" / "ansible_collections" / "alteo" / "hostops"
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT)
    monkeypatch.setenv("HOSTOPS_ROOT", str(root))
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))
    return root


@pytest.fixture(scope="session")
def root_user() -> None:
    """Lab tests boot containers: they need root, and fail (not skip) without it."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (they boot systemd-nspawn hosts); run as root")


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The ``hostops`` command as a function: ``cli("lab", "status")``."""
    return hostops


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A hostops state directory of the test module's own (HOSTOPS_STATE_DIR): its orders,
    delivery notes and request runs, apart from the repository's state/."""
    path = tmp_path_factory.mktemp("state")
    saved = os.environ.get("HOSTOPS_STATE_DIR")
    os.environ["HOSTOPS_STATE_DIR"] = str(path)
    yield path
    if saved is None:
        del os.environ["HOSTOPS_STATE_DIR"]
    else:
        os.environ["HOSTOPS_STATE_DIR"] = saved


@pytest.fixture(scope="session")
def plugin_module() -> Callable[[str], ModuleType]:
    """The collection's module of that name (plugins/modules/NAME.py), loaded from its
    file, for its functions: ``plugin_module("services").parse_show(...)``."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "plugins" / "modules" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"hostops_plugin_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
