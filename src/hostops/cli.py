"""The ``hostops`` command: one sub-command per operator job.

Each command group lives in its own module exposing ``register(subparsers)``; the
function it sets as ``func`` returns the exit status. Errors for people are raised
as :class:`hostops.core.errors.HostopsError` and printed here, one line per problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hostops import __version__
from hostops.core.errors import HostopsError, UsageError
from hostops.core.runner import set_verbosity, strategy_name
from hostops.module_utils.problems import InputProblems

# The module of each command (tests/unit/core/test_cli.py checks it against what the
# modules register): a command is parsed and run with its own module imported only, not
# every command's (about 75 ms of each hostops command).
COMMANDS = {
    "lab": "hostops.lab.cli",
    "backup": "hostops.backup.cli",
    "order": "hostops.orders.cli",
    "fleet": "hostops.orders.cli",
    "maintenance": "hostops.maintenance.cli",
    "patch": "hostops.patching.cli",
    "request": "hostops.requests.cli",
    "updates": "hostops.patching.updates_cli",
    "window": "hostops.patching.updates_cli",
    "monitor": "hostops.monitoring.cli",
    "sla": "hostops.sla.cli",
    "isolate": "hostops.isolation.cli",
    "release": "hostops.isolation.cli",
    "bandwidth": "hostops.isolation.cli",
    "mail": "hostops.mail.cli",
    "security": "hostops.security.cli",
}
# every command module, in the order of the commands above (the order help lists them in)
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given the command line, of the command it names (the
    same parser for that command)."""
    parser = argparse.ArgumentParser(
        prog="hostops",
        description="Alteo hosting automation: lab, orders, requests, patching, backups.",
    )
    parser.add_argument("--version", action="version", version=f"hostops {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules(argv):
        module = __import__(name, fromlist=["register"])
        module.register(subparsers)
    _add_verbose(subparsers)
    return parser


def command_modules(argv: Sequence[str] | None) -> tuple[str, ...]:
    """The modules to register for ARGV: the module of the command it names first, or
    every module (no command line, no command, an unknown command, or help asked before
    the command: the list of all commands, and argparse's own errors, stay whole)."""
    if argv is None:
        return COMMAND_MODULES
    for token in argv:
        if _asks_help(token):
            return COMMAND_MODULES
        if not token.startswith("-"):
            module = COMMANDS.get(token)
            return (module,) if module in COMMAND_MODULES else COMMAND_MODULES
    return COMMAND_MODULES


VERBOSE_HELP = (
    "more detail: -v prints Ansible's own output of every task; -vv and more are also "
    "passed to ansible-playbook (before or after the command)"
)


def _asks_help(token: str) -> bool:
    """Whether an option before the command asks for help: -h, --help or an abbreviation
    of it (--he), or -h in a cluster of short options (-vh)."""
    if token.startswith("--"):
        return len(token) > 3 and "--help".startswith(token.split("=", 1)[0])
    return token.startswith("-") and "h" in token[1:]


def _add_verbose(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """-v on every command too (``hostops order apply -v ...``), counted with the global
    one; SUPPRESS keeps a command's default from resetting the global count."""
    for sub in subparsers.choices.values():
        nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for action in nested:
                _add_verbose(action)
        else:
            sub.add_argument(
                "-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE_HELP
            )


def argv_problems(argv: Sequence[str]) -> list[str]:
    """What no command takes, found before any is parsed: an empty value (``--limit ''``
    would otherwise mean every host, ``--prefix ''`` the whole lab, an empty path the
    current directory) and text that is not UTF-8 (bytes the shell passed that cannot be
    written to a record, a notice or a log once the command has acted). What follows
    ``--`` (``hostops lab ssh HOST -- COMMAND``) is a command's own."""
    problems = []
    ours = list(argv)[: list(argv).index("--")] if "--" in argv else list(argv)
    for index, token in enumerate(ours):
        option, _, value = token.partition("=") if token.startswith("--") else ("", "", token)
        if not option and index > 0 and ours[index - 1].startswith("-"):
            option = ours[index - 1]
        named = option or "argument"
        if not value and (not option or "=" in token or option != token):
            problems.append(f"{named}: {value!r} is empty")
        elif any("\udc80" <= char <= "\udcff" for char in token):
            problems.append(f"{named}: {value!r} is not UTF-8 text")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(given)
    if problems := argv_problems(given):
        for line in problems:
            print(f"hostops: {line}", file=sys.stderr)
        return UsageError.exit_status
    args = parser.parse_args(given)
    set_verbosity(args.verbose)
    try:
        strategy_name()  # a bad HOSTOPS_ANSIBLE_STRATEGY stops here, before any host
        status: int = args.func(args)
    except (HostopsError, InputProblems) as err:
        for line in str(err).splitlines() or [err.__class__.__name__]:
            print(f"hostops: {line}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("hostops: interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
