"""Bad input as the collection's rules report it: one line per problem for a person.

The rules in ``plugins/module_utils`` raise :class:`InputProblems`; the ``hostops`` CLI
turns it into exit status 2 (its ``UsageError`` is one), filters turn it into a list of
problems or an Ansible error. Standard library only.
"""

from __future__ import annotations


class InputProblems(Exception):
    """Bad input, found before anything ran; ``problems`` holds one line per problem."""

    exit_status = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
