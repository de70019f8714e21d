"""hostops-backup: database dumps and file backups to a restic repository, and their restore.

The command line (the entry point): one subcommand per verb, each a cmd_* function."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backup import cmd_check, cmd_finish, cmd_run
from .common import CONFIG_FILE, KINDS, Failure, Terminated, log
from .config import Config, load_config
from .probe import cmd_init, cmd_probe
from .restic import Restic
from .restore import cmd_restore_db, cmd_restore_files
from .snapshots import cmd_snapshots
from .verify import cmd_verify


def cmd_restic(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """restic with the configured repository, for operators: hostops-backup restic snapshots"""
    restic = Restic(cfg)
    proc = subprocess.run(restic.command(args.restic_args), env=restic.env, check=False)
    raise SystemExit(proc.returncode)


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n", maxsplit=1)[0]
    parser = argparse.ArgumentParser(prog="hostops-backup", description=summary)
    parser.add_argument("--config", type=Path, default=CONFIG_FILE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def lock_wait(p: argparse.ArgumentParser, default: float = 0) -> None:
        p.add_argument(
            "--lock-wait",
            type=float,
            default=default,
            metavar="SECONDS",
            help="wait this long for another run to finish (default: fail at once)",
        )

    p = verbs.add_parser("run", help="back up now: dumps, files or both")
    p.add_argument("--kind", choices=("all", *KINDS), default="all")
    lock_wait(p)
    p.set_defaults(func=cmd_run)

    p = verbs.add_parser("finish", help="ExecStopPost: record a run that died as failed")
    p.add_argument("--kind", choices=(*KINDS, "check"), required=True)
    p.set_defaults(func=cmd_finish)

    p = verbs.add_parser("check", help="restic check, reading a part of the data in turn")
    p.add_argument("--subset", help="read this data subset instead (n/t, x%%, or a size)")
    lock_wait(p)
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser("snapshots", help="list the snapshots and the last dumps' databases")
    p.set_defaults(func=cmd_snapshots)

    def when(p: argparse.ArgumentParser, default: str | None) -> None:
        group = p.add_mutually_exclusive_group(required=default is None)
        group.add_argument("--at", default=default, help="latest, YYYY-MM-DD or ISO 8601 time")
        group.add_argument("--snapshot", help="a snapshot id")

    p = verbs.add_parser("restore-db", help="restore a database from a dumps snapshot")
    p.add_argument("--database", required=True)
    p.add_argument("--engine", choices=("mariadb", "postgresql"))
    p.add_argument("--as", dest="as_name", help="restore under this name instead")
    when(p, None)
    p.add_argument("--plan", action="store_true", help="only say what would be done")
    p.add_argument("--replace", action="store_true", help="allow replacing a live database")
    lock_wait(p)
    p.set_defaults(func=cmd_restore_db)

    p = verbs.add_parser("restore-files", help="restore a path from a files snapshot")
    p.add_argument("--path", required=True)
    p.add_argument("--to", required=True, help="where the path is restored (it becomes it)")
    when(p, None)
    p.add_argument("--plan", action="store_true", help="only say what would be done")
    p.add_argument("--replace", action="store_true", help="allow replacing live files")
    lock_wait(p)
    p.set_defaults(func=cmd_restore_files)

    p = verbs.add_parser("verify", help="restore the dumps into scratch databases and compare")
    when(p, "latest")
    lock_wait(p)
    p.set_defaults(func=cmd_verify)

    p = verbs.add_parser("probe", help="whether the password opens the repository (the role)")
    p.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="do not record the fingerprint of what restic accepted (check mode)",
    )
    p.set_defaults(func=cmd_probe)

    p = verbs.add_parser("init", help="make the repository (the role), its fingerprint recorded")
    p.set_defaults(func=cmd_init)

    p = verbs.add_parser("restic", help="run restic on the configured repository")
    p.add_argument("restic_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_restic)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.umask(0o077)
    report: dict[str, Any]
    try:
        cfg = load_config(args.config)
        os.environ["TZ"] = cfg.timezone
        time.tzset()
        report = args.func(cfg, args)
        status = 0
    except Failure as err:
        log(f"ERROR: {err}")
        report = getattr(err, "report", None) or {"ok": False}
        report.setdefault("error", str(err))
        report["ok"] = False
        status = err.status
    except Terminated:
        log("ERROR: terminated (stop request or start timeout)")
        report, status = {"ok": False, "error": "terminated"}, 143
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    elif report.get("error") is None:
        print(json.dumps(report, indent=2, sort_keys=True) if args.verb != "finish" else "ok")
    return status
