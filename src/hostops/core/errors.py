"""Errors that reach people: each carries the exit status the CLI returns."""

from __future__ import annotations

from hostops.module_utils.problems import InputProblems


class HostopsError(Exception):
    """A failure the operator must read; ``exit_status`` is what the CLI returns."""

    exit_status = 1


class UsageError(HostopsError, InputProblems):
    """Bad input (an order, an argument): nothing was touched. Exit status 2.

    The collection's rules (``plugins/module_utils``) raise :class:`InputProblems`, which
    the CLI reports the same way."""

    exit_status = 2
