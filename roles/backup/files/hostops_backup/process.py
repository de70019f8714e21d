"""Running commands: with a deadline, with output watched, with their failures explained."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Sequence
from typing import IO

from .common import CommandFailed, Failure


def run_until(
    argv: Sequence[str], *, env: dict[str, str], stop_on: re.Pattern[bytes]
) -> tuple[subprocess.CompletedProcess[bytes], bool]:
    """Run a command, its output captured; stop it (SIGTERM: restic removes its lock) the
    moment a line of its standard error matches *stop_on*. Returns the completed process
    and whether it was stopped so."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
    )
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # never: both are pipes
        raise Failure(f"{argv[0]}: no output pipes")
    out: list[bytes] = []
    drain = threading.Thread(target=lambda: out.append(stdout.read()))
    drain.start()
    err: list[bytes] = []
    stopped = False
    try:
        for line in stderr:
            err.append(line)
            if not stopped and stop_on.search(line):
                stopped = True
                proc.terminate()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        drain.join()
    done = subprocess.CompletedProcess(argv, proc.returncode, b"".join(out), b"".join(err))
    return done, stopped


def tail_lines(text: str | bytes, lines: int = 4) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept)


def run(
    argv: Sequence[str],
    *,
    what: str,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    user: str | None = None,
    env: dict[str, str] | None = None,
    ok: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; a status outside *ok* is a Failure naming *what* and stderr's tail."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            user=user,
            cwd="/",
            check=False,
        )
    except FileNotFoundError as err:
        raise Failure(f"{what}: {argv[0]} is not installed") from err
    if proc.returncode not in ok:
        detail = tail_lines(proc.stderr) or tail_lines(proc.stdout or b"")
        raise CommandFailed(
            f"{what} failed (exit status {proc.returncode}): {detail}", proc.returncode
        )
    return proc
