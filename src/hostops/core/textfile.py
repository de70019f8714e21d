"""A file named on the command line (an order, an incidents file), read as hostile input.

Only a regular file is opened: a FIFO or a device would block the open or the read
forever. The type is checked before the open and again on the descriptor, opened
non-blocking, in case the path was swapped in between; at most LIMIT bytes are read.
Callers turn the exceptions into their own messages (exit 2).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(Exception):
    """The path is not a regular file; ``kind`` says what it is ("a FIFO", ...)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FileTooBig(Exception):
    """More than the limit: ``size`` as the file system said, None when it grew while read."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def _check(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFile(next((n for test, n in _KINDS if test(info.st_mode)), "not a file"))
    if info.st_size > limit:
        raise FileTooBig(info.st_size)


def read_regular(path: Path, limit: int) -> bytes:
    """The file's bytes; NotRegularFile, FileTooBig, or OSError (missing, unreadable)."""
    _check(os.stat(path), limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as stream:
        _check(os.fstat(stream.fileno()), limit)
        raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise FileTooBig(None)
    return raw
