"""One run at a time on the host (flock)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from .common import Busy
from .config import Config


@contextlib.contextmanager
def exclusive(cfg: Config, wait: float) -> Iterator[None]:
    """One run at a time on this host. The kernel releases the lock when the process
    dies, even by SIGKILL, so a killed run never blocks the next one."""
    cfg.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.lock_file, "a+") as lock:
        deadline = time.monotonic() + max(wait, 0)
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "?"
                    raise Busy(
                        f"another hostops-backup run holds {cfg.lock_file} (pid {holder}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(1)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield
