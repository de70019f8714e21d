"""What every database engine's code shares: names as files, quoting, scratch names."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import Path

from ..common import SCRATCH_PREFIX


def file_name(name: str) -> str:
    """A database name as a file name: names are not restricted like file names are."""
    return urllib.parse.quote(name, safe="") or "_"


def quote_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def scratch_name(database: str) -> str:
    name = SCRATCH_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", database)
    if len(name) > 63:
        digest = hashlib.sha256(database.encode()).hexdigest()[:8]
        name = name[: 63 - 9] + "_" + digest
    return name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
