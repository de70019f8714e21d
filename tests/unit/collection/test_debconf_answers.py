"""alteo.hostops.debconf_answers' reading of debconf's database: an answer is left alone
only when the database holds exactly that value; every other goes to
ansible.builtin.debconf (the webmail and mail roles run it on real hosts, their first
applies answering and their re-applies reading)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

Loader = Callable[[str], ModuleType]

# the shape of /var/cache/debconf/config.dat (a Roundcube host's, shortened)
CONFIG = """Name: roundcube/database-type
Template: roundcube/database-type
Value: sqlite3
Owners: roundcube-core
Flags: seen

Name: roundcube/dbconfig-install
Template: roundcube/dbconfig-install
Value: true
Owners: roundcube-core
Flags: seen

Name: roundcube/db/app-user
Template: roundcube/db/app-user
Value: roundcube@localhost
Owners: roundcube-core
Variables:
 pkg = roundcube

Name: opendmarc/dbconfig-install
Template: opendmarc/dbconfig-install
Owners: opendmarc

Name: tzdata/Areas
Template: tzdata/Areas
Value: Etc
Owners: tzdata, tzdata-legacy
"""


def test_the_database_is_read_one_value_per_question(plugin_module: Loader) -> None:
    questions = plugin_module("debconf_answers").parse_config(CONFIG)
    assert questions["roundcube/database-type"] == ("sqlite3", {"roundcube-core"})
    assert questions["roundcube/db/app-user"] == ("roundcube@localhost", {"roundcube-core"})
    assert questions["opendmarc/dbconfig-install"] == (None, {"opendmarc"})  # no value yet
    assert questions["tzdata/Areas"] == ("Etc", {"tzdata", "tzdata-legacy"})
    assert all("pkg" not in str(question) for question in questions.values())


@pytest.mark.parametrize(
    ("question", "vtype", "value", "expected"),
    [
        # held exactly (the positive controls), a boolean as debconf keeps it
        ("roundcube/database-type", "select", "sqlite3", True),
        ("roundcube/dbconfig-install", "boolean", "true", True),
        ("roundcube/dbconfig-install", "boolean", "True", True),
        # ansible.builtin.debconf's to decide
        ("roundcube/database-type", "select", "mysql", False),
        ("roundcube/dbconfig-install", "boolean", "false", False),
        ("roundcube/dbconfig-install", "boolean", "yes", False),  # the stock module's compare
        ("tzdata/Areas", "select", "Etc", False),  # another package's question
        ("opendmarc/dbconfig-install", "boolean", "false", False),  # no value yet
        ("roundcube/missing", "string", "", False),
        ("roundcube/db/app-user", "password", "roundcube@localhost", False),  # never
    ],
)
def test_an_answer_is_settled_only_when_held_exactly(
    plugin_module: Loader, question: str, vtype: str, value: str, expected: bool
) -> None:
    module = plugin_module("debconf_answers")
    answer = {"question": question, "vtype": vtype, "value": value}
    assert module.settled(module.parse_config(CONFIG), "roundcube-core", answer) is expected


def test_a_question_is_the_package_s_among_its_owners(plugin_module: Loader) -> None:
    module = plugin_module("debconf_answers")
    questions = module.parse_config(CONFIG)
    areas = {"question": "tzdata/Areas", "vtype": "select", "value": "Etc"}
    assert module.settled(questions, "tzdata", areas)
    assert module.settled(questions, "tzdata-legacy", areas)
    assert not module.settled(questions, "tzdata-extra", areas)
