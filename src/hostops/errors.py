"""Errors that reach people: each carries the exit status the CLI returns."""

from __future__ import annotations


class HostopsError(Exception):
    """A failure the operator must read; ``exit_status`` is what the CLI returns."""

    exit_status = 1


class UsageError(HostopsError):
    """Bad input (an order, an argument): nothing was touched. Exit status 2."""

    exit_status = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
