"""``hostops lab up | down | status | ssh``: the lab of real Debian hosts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hostops.lab.nspawn import DEFAULT_RELEASE, RELEASES, Lab


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lab = subparsers.add_parser(
        "lab", help="boot and remove lab hosts (Debian under systemd-nspawn)"
    )
    verbs = lab.add_subparsers(dest="lab_command", metavar="VERB", required=True)

    up = verbs.add_parser(
        "up", help="boot lab hosts (idempotent) and write inventories/lab/hosts.yml"
    )
    up.add_argument("--hosts", type=int, default=1, help="how many hosts (default 1)")
    up.add_argument("--release", choices=RELEASES, default=DEFAULT_RELEASE, help="Debian release")
    up.add_argument("--prefix", help="host name prefix (default: the release name)")
    up.add_argument("--subnet", help="lab subnet (default 172.29.77.0/24 or HOSTOPS_LAB_SUBNET)")
    up.add_argument(
        "--inventory", type=Path, help="also write an inventory of just these hosts to this file"
    )
    up.add_argument("--group", default="lab_selected", help="their group in that inventory")
    up.set_defaults(func=cmd_up)

    down = verbs.add_parser("down", help="stop lab hosts and remove what the lab made")
    down.add_argument("names", nargs="*", metavar="HOST", help="only these hosts (default: all)")
    down.add_argument("--prefix", help="only the hosts whose names start with this")
    down.set_defaults(func=cmd_down)

    status = verbs.add_parser("status", help="what the lab runs")
    status.set_defaults(func=cmd_status)

    ssh = verbs.add_parser("ssh", help="open a shell (or run a command) on a lab host")
    ssh.add_argument("host", metavar="HOST")
    ssh.add_argument("command", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    ssh.set_defaults(func=cmd_ssh)


def cmd_up(args: argparse.Namespace) -> int:
    hosts = Lab(subnet=args.subnet).up(
        args.hosts, args.release, args.prefix, inventory=args.inventory, group=args.group
    )
    for host in hosts:
        print(f"{host.name}\t{host.release}\t{host.address}\tpid {host.pid}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    removed = Lab().down(args.names or None, prefix=args.prefix)
    print(f"removed: {', '.join(removed) if removed else 'nothing'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rows = Lab().status()
    if len(rows) == 1 and rows[0]["state"] == "stopped":
        print("the lab runs nothing")
        return 0
    widths = {key: max(len(key), *(len(r[key]) for r in rows)) for key in rows[0]}
    print("  ".join(key.upper().ljust(w) for key, w in widths.items()).rstrip())
    for row in rows:
        print("  ".join(row[key].ljust(w) for key, w in widths.items()).rstrip())
    return 0


def cmd_ssh(args: argparse.Namespace) -> int:
    command = Lab().ssh_command(args.host, args.command)
    sys.stdout.flush()
    os.execvp(command[0], command)  # noqa: S606 - hand the terminal to ssh
