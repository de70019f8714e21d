# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a read-first action (alteo.hostops.services, apache_modules, identity,
debconf_answers) keeps of each stock module it runs, besides changed and failed: the
module's warnings, deprecations and diffs become the task's, as they would have been
the stock task's own."""

from __future__ import annotations

from typing import Any


def pass_on(result: dict[str, Any], answer: dict[str, Any]) -> None:
    """Add the stock module's warnings, deprecations and diff (one diff, or a list of
    them) to the task's result, after those of the stock modules run before it."""
    for key in ("warnings", "deprecations"):
        if answer.get(key):
            result.setdefault(key, []).extend(answer[key])
    diff = answer.get("diff")
    if diff:
        result.setdefault("diff", []).extend(diff if isinstance(diff, list) else [diff])
