"""Each rule written once (issue 16): the domain-name, mail-address, contact-address,
release and backup-path rules live in plugins/module_utils and nowhere else; the roles
reach them through the collection's test and filter plugins, the CLI by importing them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# What a copy of a rule would contain: the domain label, the mail local part, the old
# backup-path test of the role.
COPIES = {
    # labels followed by a dot, repeated (a single label, as a DKIM selector, is another rule)
    "domain name": re.compile(r"\[a-z0-9-\]\{0,61\}\[a-z0-9\]\)\?\\\.\)\+"),
    "mail local part": re.compile(r"\[a-z0-9_-\]\|\\\\?\.\(\?!"),
    "backup path": re.compile(r"match', '\^/\$'"),
    # a customer's contact address (orders, inventories, --contact)
    "contact address": re.compile(r"\[A-Za-z0-9\._%\+-\]\+@"),
}
HOME = {
    "domain name": "plugins/module_utils/names.py",
    "mail local part": "plugins/module_utils/names.py",
    "backup path": "plugins/module_utils/order_rules.py",
    "contact address": "plugins/module_utils/names.py",
}
SOURCES = [
    path
    for pattern in ("roles/**/*.yml", "playbooks/**/*.yml", "src/**/*.py", "plugins/**/*.py")
    for path in ROOT.glob(pattern)
]


@pytest.mark.parametrize("rule", sorted(COPIES))
def test_the_rule_is_written_in_one_place(rule: str) -> None:
    found = sorted(
        str(path.relative_to(ROOT))
        for path in SOURCES
        if path.is_file() and COPIES[rule].search(path.read_text(encoding="utf-8"))
    )
    assert found == ([HOME[rule]] if rule != "backup path" else [])
