"""The strategy's on-disk cache of Jinja2's compiled templates (issue 20,
plugins/plugin_utils/template_cache.py): a second process reads back what the first
compiled and renders exactly what Jinja2 renders without it; the key changes with what
the generated code depends on; a directory others may write to, a setting of 'off' and a
damaged entry leave compilation to Jinja2. Each run is a fresh interpreter, as a forked
worker of ansible-playbook is one the cache has never served."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS = ROOT / "collections"

# Templates (a task argument, a file with blocks and whitespace control, backslashes in
# an expression's string) and conditionals (compiled as expressions), rendered through
# Ansible's Templar as tasks are.
PROBE = r"""
import json, os, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
from ansible.collections.list import list_collection_dirs
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.alteo.hostops.plugins.plugin_utils import template_cache

cache = None
if sys.argv[1] == "install":
    cache = template_cache.install([os.fsdecode(p) for p in list_collection_dirs()])
templar = Templar(loader=DataLoader(), variables={
    "name": "web01", "ports": [80, 443], "path": "C:\\tmp", "fqdn": "web01.martin.example",
})
TEMPLATES = [
    "{{ name | upper }}:{{ ports | map('string') | join(',') }}",
    "{% for port in ports %}\n  listen {{ port }};\n{% endfor %}\nend\n",
    "{{ 'a\\nb' }}|{{ path }}",
    "{{ fqdn is alteo.hostops.domain_name }}",
    "{{ ports | sum }}",
]
CONDITIONALS = ["ports | length == 2", "name == 'web02'", "fqdn is alteo.hostops.domain_name"]
rendered = [templar.template(trust_as_template(text)) for text in TEMPLATES]
evaluated = [templar.evaluate_conditional(trust_as_template(text)) for text in CONDITIONALS]
print(json.dumps({
    "rendered": rendered, "evaluated": evaluated,
    "cache": None if cache is None else {"hits": cache.hits, "writes": cache.writes},
}))
"""


def probe(mode: str, directory: Path | str) -> dict[str, Any]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "HOSTOPS_TEMPLATE_CACHE": str(directory),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def entries(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if not path.name.startswith("."))


def test_a_second_process_reads_back_what_the_first_compiled(tmp_path: Path) -> None:
    directory = tmp_path / "jinja"
    plain = probe("plain", directory)  # Jinja2 alone: what must be rendered
    assert plain["cache"] is None
    assert plain["rendered"] == [
        "WEB01:80,443", "  listen 80;\n  listen 443;\nend\n", "a\\nb|C:\\tmp", True, 523,
    ]  # fmt: skip
    assert plain["evaluated"] == [True, False, True]
    assert not directory.exists()

    first = probe("install", directory)
    assert (first["rendered"], first["evaluated"]) == (plain["rendered"], plain["evaluated"])
    assert first["cache"]["writes"] > 0
    written = entries(directory)
    assert len(written) == first["cache"]["writes"]
    assert directory.stat().st_mode & 0o777 == 0o700

    second = probe("install", directory)
    assert (second["rendered"], second["evaluated"]) == (plain["rendered"], plain["evaluated"])
    assert second["cache"] == {"hits": first["cache"]["writes"], "writes": 0}
    assert entries(directory) == written


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    directory = tmp_path / "jinja"
    first = probe("install", directory)
    for path in entries(directory):
        path.write_bytes(b"not marshalled code")
    again = probe("install", directory)
    assert (again["rendered"], again["evaluated"]) == (first["rendered"], first["evaluated"])
    assert again["cache"] == {"hits": 0, "writes": first["cache"]["writes"]}


def test_off_a_relative_or_a_shared_directory_leaves_jinja_alone(tmp_path: Path) -> None:
    assert probe("install", "off")["cache"] is None
    relative = "hostops-template-cache-test"  # not absolute: off, nothing in the working dir
    assert probe("install", relative)["cache"] is None
    assert not (ROOT / relative).exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = probe("install", shared)
    assert result["cache"] is None
    assert entries(shared) == []
    assert result["rendered"][0] == "WEB01:80,443"
    private = tmp_path / "private"  # the control: the same call with a private directory
    assert probe("install", private)["cache"]["writes"] > 0


KEYS = """
import json
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible_collections.alteo.hostops.plugins.plugin_utils.template_cache import CodeCache
cache = CodeCache(directory=None, salt="s")
env = AnsibleEnvironment()
text = "{{ name }}"
base = cache.key("template", text, env, None)
print(json.dumps({
    "same": cache.key("template", text, AnsibleEnvironment(), None) == base,
    "expression": cache.key("expression", text, env, None) != base,
    "escaping": cache.key("template", text, env, True) != base,
    "delimiters": cache.key("template", text, env.overlay(variable_start_string="[["), None)
    != base,
    "whitespace": cache.key("template", text, env.overlay(lstrip_blocks=True), None) != base,
    "text": cache.key("template", text + " ", env, None) != base,
    "salt": CodeCache(directory=None, salt="t").key("template", text, env, None) != base,
}))
"""


def test_the_key_holds_what_the_generated_code_depends_on() -> None:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
    }
    done = subprocess.run(
        [sys.executable, "-c", KEYS],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == dict.fromkeys(result, True)
    assert set(result) == {
        "same", "expression", "escaping", "delimiters", "whitespace", "text", "salt",
    }  # fmt: skip
