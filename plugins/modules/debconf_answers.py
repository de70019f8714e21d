#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: debconf_answers
short_description: Answer a package's debconf questions, reading debconf's database first
version_added: 0.1.0
description:
  - The answers of O(answers) given to the questions of the package O(name), as
    M(ansible.builtin.debconf) gives one, but reading first debconf's configuration
    database (C(/var/cache/debconf/config.dat), the default of C(debconf.conf)) for all of
    them.
  - An answer found there with the value asked (a V(boolean) compared as V(true) or
    V(false), as M(ansible.builtin.debconf) compares it) is left alone and reported
    unchanged. Every other one (not there, another value, a V(password), which that
    database does not hold) goes to M(ansible.builtin.debconf), in the order given; it
    then decides, as a task of its own would.
  - M(ansible.builtin.debconf) runs C(debconf-show) (Perl, about 50 ms) for every answer
    even when nothing is to be done.
  - The work is done by the action plugin of the same name; this module is the query it
    runs on the host.
options:
  name:
    description: The package whose questions these are (as M(ansible.builtin.debconf)'s).
    type: str
    required: true
  answers:
    description: The answers, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      question:
        description: The question's name (such as V(roundcube/database-type)).
        type: str
        required: true
      vtype:
        description: Its type, as M(ansible.builtin.debconf)'s.
        type: str
        required: true
        choices: [boolean, error, multiselect, note, password, seen, select, string, text, title]
      value:
        description: The answer.
        type: str
        required: true
attributes:
  check_mode:
    description:
      - The database is read as in a real run; M(ansible.builtin.debconf) predicts the
        rest.
    support: full
  diff_mode:
    description: No diff.
    support: none
notes:
  - A database that cannot be read (another debconf configuration) leaves every answer
    to M(ansible.builtin.debconf).
seealso:
  - module: ansible.builtin.debconf
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Choose Roundcube's database (SQLite, made by dbconfig-common)
  alteo.hostops.debconf_answers:
    name: roundcube-core
    answers:
      - {question: roundcube/dbconfig-install, vtype: boolean, value: "true"}
      - {question: roundcube/database-type, vtype: select, value: sqlite3}
"""

RETURN = r"""
answers:
  description:
    - Each answer's C(question) and C(vtype), in order (not its value, as a password's is
      a secret), with whether it was left alone (C(settled)) and whether
      M(ansible.builtin.debconf) changed it (C(changed)).
  returned: always
  type: list
  elements: dict
  sample:
    - question: roundcube/database-type
      vtype: select
      settled: true
      changed: false
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

CONFIG = "/var/cache/debconf/config.dat"
VTYPES = ["boolean", "error", "multiselect", "note", "password", "seen", "select", "string",
          "text", "title"]  # fmt: skip


def parse_config(text: str) -> dict[str, tuple[str | None, frozenset[str]]]:
    """debconf's config.dat: stanzas of 'Field: value' lines, blank-line separated; each
    question's Value (None when the stanza has none) and Owners (the packages whose
    questions debconf-show lists it with)."""
    questions: dict[str, tuple[str | None, frozenset[str]]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            key, sep, value = line.partition(":")
            if sep and not key.startswith((" ", "\t")) and key not in fields:
                fields[key] = value[1:] if value.startswith(" ") else value
        if "Name" in fields:
            owners = frozenset(owner.strip() for owner in fields.get("Owners", "").split(","))
            questions[fields["Name"]] = (fields.get("Value"), owners - {""})
    return questions


def settled(
    questions: dict[str, tuple[str | None, frozenset[str]]], package: str, answer: dict[str, str]
) -> bool:
    """Whether debconf-show of the package would show exactly that answer, as
    ansible.builtin.debconf compares it (a boolean in lower case); a password never (it is
    not in that database)."""
    if answer["vtype"] == "password" or answer["question"] not in questions:
        return False
    value, owners = questions[answer["question"]]
    if package not in owners or value is None:
        return False
    if answer["vtype"] == "boolean":
        return value.lower() == answer["value"].lower()
    return value == answer["value"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "answers": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "question": {"type": "str", "required": True},
                    "vtype": {"type": "str", "required": True, "choices": VTYPES},
                    "value": {"type": "str", "required": True, "no_log": False},
                },
            },
        },
        supports_check_mode=True,
    )
    try:
        with open(CONFIG, encoding="utf-8", errors="replace") as handle:
            values = parse_config(handle.read())
    except OSError:
        values = {}
    answers: list[dict[str, Any]] = [
        {
            "question": answer["question"],
            "vtype": answer["vtype"],
            "settled": settled(values, module.params["name"], answer),
            "changed": False,
        }
        for answer in module.params["answers"]
    ]
    module.exit_json(changed=False, answers=answers)


if __name__ == "__main__":
    main()
