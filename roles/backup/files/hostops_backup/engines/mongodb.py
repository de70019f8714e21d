"""MongoDB (not tested: Debian ships neither the server nor the database tools)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..common import Failure, log
from ..config import Config
from ..process import run


def mongodb_state() -> tuple[bool, str]:
    """(dump it?, why not). The MongoDB code path is not tested: Debian ships neither the
    server nor the database tools, so no lab host can have them."""
    dump = shutil.which("mongodump")
    server = shutil.which("mongod") or Path("/usr/bin/mongod").exists()
    if dump:
        return True, ""
    if server:
        raise Failure("mongodb: mongod is installed but mongodump is not; install the tools")
    return False, "mongodump is not installed"


def dump_mongodb(cfg: Config) -> dict[str, Any]:
    """Untested here (no MongoDB in Debian): a whole-instance archive with mongodump."""
    folder = cfg.dump_dir / "mongodb"
    folder.mkdir(mode=0o700)
    target = folder / "all.archive"
    run(["mongodump", f"--archive={target}"], what="mongodump")
    log("mongodb: dumped the instance (this code path is not covered by the lab tests)")
    return {"file": str(target.relative_to(cfg.dump_dir)), "bytes": target.stat().st_size}
