"""Build hook: the wheel carries the collection, so an installed ``hostops`` needs no checkout.

The metadata is in pyproject.toml; this file only adds the collection's files (galaxy.yml,
ansible.cfg, meta/, playbooks/, plugins/, roles/, examples/) to the built package under
``hostops/collection/ansible_collections/alteo/hostops``, where
``hostops.core.runner.repo_root`` finds them when the package is not run from a checkout.
An editable install (``pip install -e``, what scripts/setup does) uses the checkout itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COLLECTION_FILES = ("galaxy.yml", "ansible.cfg", "README.md", "LICENSE")
COLLECTION_DIRS = ("meta", "playbooks", "plugins", "roles", "examples")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class BuildWithCollection(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "hostops" / "collection"
        target = target / "ansible_collections" / "alteo" / "hostops"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in COLLECTION_FILES:
            if (ROOT / name).exists():
                shutil.copy2(ROOT / name, target / name)
        for name in COLLECTION_DIRS:
            shutil.copytree(ROOT / name, target / name, symlinks=False, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithCollection})
