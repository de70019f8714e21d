"""The web_password_hash module's reading of the hash already in a web configuration
file (the hash itself is checked on real hosts: the molecule scenarios' idempotence
keeps it, their verify logs in with the password)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

MODULE = Path(__file__).resolve().parents[3] / "plugins" / "modules" / "web_password_hash.py"
OPS = "$2b$10$" + "a" * 53
PROM = "$2y$12$" + "B./9" * 13 + "c"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_password_hash", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WEB = f"""\
# Ansible managed
tls_server_config:
  cert_file: /etc/prometheus/hostops-tls/cert.pem
  key_file: /etc/prometheus/hostops-tls/key.pem
basic_auth_users:
  ops: {OPS}
  prometheus: '{PROM}'
"""


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        (WEB, "ops", OPS),
        (WEB, "prometheus", PROM),  # quoted
        (WEB, "op", None),  # a prefix of another user is not that user
        (WEB, "nobody", None),
        ("", "ops", None),  # no file yet
        ("basic_auth_users:\n  ops: plain-text\n", "ops", None),  # not a bcrypt hash
        ("basic_auth_users:\n  ops: $2b$10$short\n", "ops", None),
    ],
)
def test_current_hash(text: str, user: str, expected: str | None) -> None:
    assert load().current_hash(text, user) == expected
