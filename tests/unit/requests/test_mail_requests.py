"""The mailbox request's address rule: a table of addresses, the role's copy, the verb."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hostops.core.errors import UsageError
from hostops.requests.mail import MAILBOX, PASSWORD_VAR, check_address
from hostops.requests.verbs import check_arguments, run_request

ROOT = Path(__file__).resolve().parents[3]
MAIL_VARS = ROOT / "roles" / "mail" / "vars" / "main.yml"
REQUEST_PLAYBOOK = ROOT / "playbooks" / "request-mailbox.yml"

GOOD = [
    "alice@lab-mail.example",
    "a@b.example.com",
    "jean.dupont@alixans.fr",
    "first_last-2@sub.domain.example",
    "0@x1.example",
    f"{'a' * 64}@example.com",
    "app@relay-client.example",
    f"a@{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 56}.com",  # 254 characters in all
]

BAD = [
    ("", "exactly one '@'"),
    ("alice", "exactly one '@'"),
    ("alice@@example.com", "exactly one '@'"),
    ("al@ice@example.com", "exactly one '@'"),
    ("Alice@example.com", "local part"),
    ("alice@Example.com", "domain"),
    ("@example.com", "local part"),
    ("alice@", "domain"),
    (".alice@example.com", "local part"),
    ("alice.@example.com", "local part"),
    ("al..ice@example.com", "local part"),
    ("-alice@example.com", "local part"),
    ("alice+news@example.com", "local part"),
    ("ali ce@example.com", "local part"),
    ("alice:x@example.com", "local part"),
    ("../etc@example.com", "local part"),
    ("alice/x@example.com", "local part"),
    ("{{alice}}@example.com", "local part"),
    ("alice'@example.com", "local part"),
    ("alice\n@example.com", "local part"),
    ("alice@example.com\n", "domain"),
    ("\u0430lice@example.com", "local part"),  # a Cyrillic small a first
    ("alice@exam\u0440le.com", "domain"),  # a Cyrillic small er
    (f"{'a' * 65}@example.com", "local part"),
    ("alice@localhost", "domain"),
    ("alice@example", "domain"),
    ("alice@example.123", "domain"),
    ("alice@-example.com", "domain"),
    ("alice@exa_mple.com", "domain"),
    ("alice@example.com.", "domain"),
    (f"a@{'b' * 250}.com", "longer than 254"),
    (f"a@{'b' * 64}.com", "domain"),  # a label longer than 63
    ("postmaster@example.com", "reserved"),
    ("abuse@example.com", "reserved"),
    ("root@example.com", "reserved"),
    ("mailer-daemon@example.com", "reserved"),
]


@pytest.mark.parametrize("address", GOOD)
def test_good_addresses_pass(address: str) -> None:
    assert check_address(address) is None


@pytest.mark.parametrize(("address", "reason"), BAD)
def test_bad_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    problem = check_address(address)
    assert problem is not None
    assert reason in problem


def test_the_role_reads_the_rule_from_the_collection() -> None:
    """The role writes no pattern of its own: its preflight uses the collection's test."""
    role = yaml.safe_load(MAIL_VARS.read_text())
    assert not [name for name in role if name.endswith(("_domain_pattern", "_local_pattern"))]
    preflight = (ROOT / "roles" / "mail" / "tasks" / "mailbox_preflight.yml").read_text()
    assert "mail_mailbox_address is alteo.hostops.mail_address" in preflight


def test_the_role_and_the_cli_agree(tmp_path: Path) -> None:
    """The test plugin as Ansible runs it, on every address of both tables at once."""
    addresses = GOOD + [address for address, _ in BAD]
    values = tmp_path / "mail-addresses.yml"
    # !unsafe: Ansible would otherwise template "{{alice}}@example.com"
    values.write_text(
        "addresses:\n" + "".join(f"  - !unsafe {json.dumps(a)}\n" for a in addresses)
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "-i",
            "localhost,",
            "localhost",
            "-e",
            f"@{values}",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ addresses | select('alteo.hostops.mail_address') | list }}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_CONNECTION": "local",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    accepted = json.loads(proc.stdout.split("=>", 1)[1])["msg"]
    assert accepted == [address for address in addresses if check_address(address) is None]
    assert accepted and len(accepted) < len(addresses)  # both kinds reached the role's rule


def test_the_verb_names_its_playbook_and_secret() -> None:
    assert MAILBOX.name == "mailbox"
    assert (ROOT / "playbooks" / MAILBOX.playbook) == REQUEST_PLAYBOOK
    assert REQUEST_PLAYBOOK.exists()
    assert MAILBOX.secret is not None
    assert MAILBOX.secret.var == PASSWORD_VAR
    assert PASSWORD_VAR in REQUEST_PLAYBOOK.read_text()
    assert MAILBOX.variables({"host": "h", "address": "a@b.example"}) == {
        "request_address": "a@b.example"
    }
    assert MAILBOX.secret.vault_path({"host": "h", "address": "a@b.example"}) == (
        "h",
        "mailboxes",
        "a@b.example",
    )


def test_check_arguments_names_every_bad_argument() -> None:
    with pytest.raises(UsageError) as err:
        check_arguments(MAILBOX, {"host": "bad host;", "address": "Bob@example.com"})
    assert err.value.exit_status == 2
    host_line, address_line = err.value.problems
    assert host_line.startswith("--host: 'bad host;'")
    assert address_line.startswith("--address: 'Bob@example.com'")
    assert "local part 'Bob' is not" in address_line


def test_a_bad_address_stops_the_request_before_any_host_is_touched(tmp_path: Path) -> None:
    """No inventory is even looked at: the check comes first, and exits 2."""
    out = io.StringIO()
    with pytest.raises(UsageError) as err:
        run_request(
            MAILBOX,
            {"host": "mail-1", "address": "x;rm -rf /@example.com"},
            lab=False,
            inventories=[tmp_path / "does-not-exist.yml"],
            out=out,
        )
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("--address: 'x;rm -rf /@example.com'")
    assert "local part 'x;rm -rf /' is not" in err.value.problems[0]
    assert out.getvalue() == ""
