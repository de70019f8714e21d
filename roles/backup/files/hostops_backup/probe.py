"""The repository's probe for the role (probe, init): does this server's password open it?

restic answers by deriving the repository key from the password (scrypt, tuned by restic
to take about half a second; nearly a second on a small machine), at every apply. The
answer can only change when the repository's config, its keys or the password change, so
the probe records, once restic has answered yes (or made the repository with that
password), a fingerprint of those three: an HMAC-SHA256 keyed with the password over the
config file's SHA-256 and the key files' names (restic names a key file after the SHA-256
of its content). The next probe reads the config file and the key list through the REST
server (two small HTTPS requests, no key derived) and asks restic again only when the
fingerprint differs or cannot be read. The fingerprint tells nothing of the password; it
is kept root-only beside the program's state.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .common import log
from .config import Config
from .restic import Restic

# restic's REST protocol, version 2: a listing is a JSON array of {"name", "size"}
# (version 1 gives the names only; both are read).
REST_V2 = "application/vnd.x.restic.rest.v2"
TIMEOUT = 20


def fingerprint(password: bytes, config: bytes, keys: Iterable[str]) -> str:
    """What decides whether *password* opens the repository: its config and key files."""
    message = hashlib.sha256(config).hexdigest() + "\n" + "\n".join(sorted(keys))
    return hmac.new(password, message.encode(), hashlib.sha256).hexdigest()


def fingerprint_file(cfg: Config) -> Path:
    return cfg.state_file.parent / "repository-verified"


def repository_url(cfg: Config) -> str:
    """The repository's REST URL with its credentials (from the root-only file)."""
    text = cfg.repository_file.read_text() if cfg.repository_file else cfg.repository
    return text.strip().removeprefix("rest:")


def _get(url: str, context: ssl.SSLContext | None, accept: str | None = None) -> bytes:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a REST repository")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port:
        netloc += f":{parts.port}"
    # http and https only (checked above)
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))  # noqa: S310
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        secret = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        # never sent on to another location, should the answer be a redirect
        request.add_unredirected_header("Authorization", f"Basic {token}")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as answer:  # noqa: S310
        return bytes(answer.read())


def current_fingerprint(cfg: Config) -> str:
    """The repository's fingerprint as the REST server shows it now (raises OSError or
    ValueError when it cannot be read: no repository, the REST server out of reach)."""
    base = repository_url(cfg).rstrip("/") + "/"
    context = None
    if base.startswith("https:"):
        cafile = str(cfg.cacert) if cfg.cacert else None
        context = ssl.create_default_context(cafile=cafile)
    config = _get(base + "config", context)
    listing = json.loads(_get(base + "keys/", context, accept=REST_V2))
    if not isinstance(listing, list):
        raise ValueError("the key listing is not a list")
    names = [str(item["name"] if isinstance(item, dict) else item) for item in listing]
    if not names:
        raise ValueError("the repository has no key")
    return fingerprint(cfg.password_file.read_bytes().strip(), config, names)


def _read_fingerprint(cfg: Config) -> str | None:
    try:
        return fingerprint_file(cfg).read_text().strip() or None
    except OSError:
        return None


def _record(cfg: Config, value: str) -> None:
    path = fingerprint_file(cfg)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fingerprint_or_none(cfg: Config) -> str | None:
    try:
        return current_fingerprint(cfg)
    except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
        return None


def _restic(cfg: Config, args: list[str]) -> subprocess.CompletedProcess[bytes]:
    """restic's answer, its output passed on (the role reads its exit status and stderr)."""
    restic = Restic(cfg)
    proc = subprocess.run(restic.command(args), env=restic.env, capture_output=True, check=False)
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    return proc


def cmd_probe(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Exit 0 when the password opens the repository, else restic's exit status (10: no
    repository) and its message."""
    current = _fingerprint_or_none(cfg)
    if current is not None and hmac.compare_digest(current, _read_fingerprint(cfg) or ""):
        log("probe: the repository, its keys and the password are those restic accepted")
        return {"ok": True, "opened_by": "fingerprint"}
    proc = _restic(cfg, ["cat", "config"])
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    if current is not None and args.record:
        _record(cfg, current)
    log("probe: restic opened the repository with the password")
    return {"ok": True, "opened_by": "restic", "recorded": current is not None and args.record}


def cmd_init(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """restic init; the new repository's fingerprint recorded (its one key is the
    password's)."""
    proc = _restic(cfg, ["init"])
    if proc.returncode != 0:
        raise SystemExit(proc.returncode)
    log("init: restic made the repository")
    current = _fingerprint_or_none(cfg)
    if current is not None:
        _record(cfg, current)
    return {"ok": True, "recorded": current is not None}
