"""The repository's probe (roles/backup/files/hostops_backup/probe.py): the fingerprint that
spares restic's key derivation on a re-apply, and how it is read from a REST server. The
probe's decisions against restic and restic's REST server are checked on lab hosts
(tests/integration/test_order_custom.py); here the REST server is a loopback HTTP server
that speaks the two requests of its protocol the probe makes."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hostops_backup.config import parse_config
from hostops_backup.probe import REST_V2, current_fingerprint, fingerprint, repository_url

PASSWORD = b"correct horse battery staple"
CONFIG = b"\x00encrypted config blob"
KEYS = ["3f1c" + "0" * 60, "a9e2" + "1" * 60]


def test_the_fingerprint_changes_with_each_of_its_inputs() -> None:
    base = fingerprint(PASSWORD, CONFIG, KEYS)
    assert fingerprint(PASSWORD, CONFIG, list(reversed(KEYS))) == base  # listing order
    assert fingerprint(PASSWORD + b"!", CONFIG, KEYS) != base  # another password
    assert fingerprint(PASSWORD, CONFIG + b"x", KEYS) != base  # another repository
    assert fingerprint(PASSWORD, CONFIG, [*KEYS, "b" * 64]) != base  # a key added
    assert fingerprint(PASSWORD, CONFIG, KEYS[:1]) != base  # a key removed


def test_the_fingerprint_shows_nothing_of_the_password() -> None:
    value = fingerprint(PASSWORD, CONFIG, KEYS)
    assert len(value) == 64
    assert PASSWORD.decode() not in value
    # not a plain hash of the inputs either: without the password it cannot be redone
    message = hashlib.sha256(CONFIG).hexdigest() + "\n" + "\n".join(sorted(KEYS))
    assert value != hashlib.sha256(message.encode()).hexdigest()
    assert value != hashlib.sha256(PASSWORD + message.encode()).hexdigest()


class Repository(BaseHTTPRequestHandler):
    """The two GETs of restic's REST protocol the probe makes, behind basic authentication."""

    user = "web01.example.fr"
    secret = "s3cret:with/odd@chars"  # noqa: S105 (the stand-in's own)
    v2 = True
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        expected = base64.b64encode(f"{self.user}:{self.secret}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self.send_error(401)
            return
        Repository.seen.append((self.path, self.headers.get("Accept", "")))
        if self.path == "/web01/config":
            body = CONFIG
        elif self.path == "/web01/keys/":
            if self.v2 and self.headers.get("Accept") == REST_V2:
                body = json.dumps([{"name": k, "size": 450} for k in KEYS]).encode()
            else:
                body = json.dumps(KEYS).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def rest() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Repository)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Repository.seen = []
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def probe_config(tmp_path: Path, url: str) -> Any:
    password = tmp_path / "restic-password"
    password.write_bytes(PASSWORD + b"\n")
    repository = tmp_path / "repository"
    repository.write_text(url + "\n")
    return parse_config(
        {
            "host": "web01.example.fr",
            "repository": "rest:http://192.0.2.5:8000/web01/",
            "repository_file": str(repository),
            "password_file": str(password),
            "retention_days": 28,
            "timezone": "Europe/Paris",
            "state_file": str(tmp_path / "state" / "state.json"),
        }
    )


def rest_url(server: ThreadingHTTPServer, user: str, secret: str) -> str:
    port = server.server_address[1]
    quoted = secret.replace("%", "%25").replace(":", "%3A").replace("/", "%2F").replace("@", "%40")
    return f"rest:http://{user}:{quoted}@127.0.0.1:{port}/web01/"


@pytest.mark.parametrize("v2", [True, False], ids=["rest-v2", "rest-v1"])
def test_the_fingerprint_read_from_the_rest_server(
    rest: ThreadingHTTPServer, tmp_path: Path, v2: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Repository, "v2", v2)
    url = rest_url(rest, Repository.user, Repository.secret)
    cfg = probe_config(tmp_path, url)
    assert repository_url(cfg) == url.removeprefix("rest:")
    # the password file's trailing newline is not part of the password (as for restic)
    assert current_fingerprint(cfg) == fingerprint(PASSWORD, CONFIG, KEYS)
    assert [path for path, _ in Repository.seen] == ["/web01/config", "/web01/keys/"]
    assert Repository.seen[1][1] == REST_V2


def test_refused_credentials_give_no_fingerprint(rest: ThreadingHTTPServer, tmp_path: Path) -> None:
    cfg = probe_config(tmp_path, rest_url(rest, Repository.user, "another password"))
    with pytest.raises(OSError, match="401"):
        current_fingerprint(cfg)
    # positive control: the right credentials are read
    cfg = probe_config(tmp_path, rest_url(rest, Repository.user, Repository.secret))
    assert current_fingerprint(cfg)


def test_no_repository_gives_no_fingerprint(rest: ThreadingHTTPServer, tmp_path: Path) -> None:
    url = rest_url(rest, Repository.user, Repository.secret).replace("/web01/", "/other/")
    with pytest.raises(OSError, match="404"):
        current_fingerprint(probe_config(tmp_path, url))
