"""The collection as Galaxy, AWX and an execution environment get it (issue 17):
build and install, ansible-doc and ansible-test sanity (scripts/collection-check); AWX's
project sync from a clean clone; the execution environment's build context."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_collection_builds_installs_renders_and_passes_sanity() -> None:
    proc = run([str(ROOT / "scripts" / "collection-check")], ROOT, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    modules = [p for p in (ROOT / "plugins" / "modules").glob("*.py") if p.name != "__init__.py"]
    roles = [p for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()]
    assert f"ansible-doc: {len(modules)} module(s) rendered" in proc.stdout
    assert f"ansible-doc: {len(roles)} role(s) rendered" in proc.stdout
    assert "ansible-test sanity: clean" in proc.stdout


@pytest.fixture(scope="module")
def clean_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("project") / "hostops"
    proc = run(["git", "clone", "--quiet", str(ROOT), str(where)], ROOT)
    assert proc.returncode == 0, proc.stderr
    return where


def syntax_check(
    project: Path, playbook: Path, collections: Path
) -> subprocess.CompletedProcess[str]:
    return run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(playbook)],
        project,
        # nothing of the checkout's set-up: no collections/ link, the project's ansible.cfg
        env={"ANSIBLE_COLLECTIONS_PATH": str(collections), "PATH": f"{BIN}:{os.environ['PATH']}"},
    )


def test_awx_project_sync_then_every_playbook_passes_syntax_check(
    clean_clone: Path, tmp_path: Path
) -> None:
    """What AWX does on project sync: install collections/requirements.yml (the
    collection itself from the project, the community ones found in the environment, as
    in our execution environment), then run playbooks against that collections path."""
    synced = tmp_path / "collections"
    playbooks = sorted((clean_clone / "playbooks").glob("*.yml"))
    assert len(playbooks) > 10
    # control: before the sync the collection's roles are not found
    before = syntax_check(clean_clone, clean_clone / "playbooks" / "provision.yml", synced)
    assert before.returncode != 0
    assert "alteo.hostops.base" in before.stdout + before.stderr

    sync = run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "-r",
            "collections/requirements.yml",
            "-p",
            str(synced),
        ],
        clean_clone,
        env={"ANSIBLE_COLLECTIONS_PATH": str(synced)},
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "alteo.hostops:0.1.0 was installed successfully" in sync.stdout
    assert (synced / "ansible_collections" / "alteo" / "hostops" / "MANIFEST.json").exists()
    failed = {}
    for playbook in [*playbooks, clean_clone / "awx" / "job-templates.yml"]:
        proc = syntax_check(clean_clone, playbook, synced)
        if proc.returncode != 0:
            failed[playbook.name] = (proc.stdout + proc.stderr)[-800:]
    assert failed == {}


def test_execution_environment_context_installs(tmp_path: Path) -> None:
    """ansible-builder makes the build context (the image needs a container engine, which
    these machines lack); its Python requirements install in a clean venv and give the
    collections the roles use."""
    context = tmp_path / "context"
    proc = run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            "execution-environment.yml",
            "-c",
            str(context),
        ],
        ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    requirements = context / "_build" / "requirements.txt"
    assert "holidays" in requirements.read_text()
    assert "openssh-client" in (context / "_build" / "bindep.txt").read_text()
    assert (context / "Dockerfile").exists() or (context / "Containerfile").exists()
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    pip = run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        tmp_path,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    listing = run(
        [str(venv / "bin" / "ansible-galaxy"), "collection", "list", "--format", "json"],
        tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "none")},
    )
    assert listing.returncode == 0, listing.stderr
    for name in ("community.general", "ansible.posix", "community.mysql", "community.postgresql"):
        assert f'"{name}"' in listing.stdout, name
