# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``alteo.hostops.plesk_request``: a ticket request as Plesk command lines.

``{{ 'vhost' | alteo.hostops.plesk_request({'domain': 'www.example.fr', 'php': '8.4'}) }}``
gives ``{'plesk_request': {...}}`` (the guard and create command lines, exactly as
``plesk_extravars`` in ``plugins/module_utils/plesk_commands.py`` builds them) or
``{'plesk_request_problems': ['--domain: ...', ...]}`` when the request cannot be served
on a Plesk server. Used by ``playbooks/tasks/plesk-request.yml``.

The command lines come from the collection's ``module_utils``, the one place that builds
them (and that the tests check exactly): the ``hostops`` CLI imports the same module, and an
AWX execution environment needs nothing but the collection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.alteo.hostops.plugins.module_utils.plesk_commands import plesk_extravars

DOCUMENTATION = r"""
name: plesk_request
short_description: A ticket request as the exact Plesk command lines that serve it
description:
  - Builds the guard (does the object exist?) and create command lines of a ticket
    request (vhost, database, db-user, ftp-account, mailbox) on a Plesk server.
options:
  _input:
    description: The verb.
    type: str
    required: true
  args:
    description: The request's arguments (domain, php, engine, name, database, user, address).
    type: dict
    required: true
"""

RETURN = r"""
_value:
  description: C(plesk_request) (the command lines) or C(plesk_request_problems) (why not).
  type: dict
"""


def plesk_request(verb: str, args: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(args, Mapping):
        raise AnsibleFilterError(
            f"alteo.hostops.plesk_request: args must be a mapping, got {args!r}"
        )
    # Ansible hands over its own string types: plain str for the builders' checks.
    plain = {str(key): (None if value is None else str(value)) for key, value in args.items()}
    return plesk_extravars(str(verb), plain)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"plesk_request": plesk_request}
