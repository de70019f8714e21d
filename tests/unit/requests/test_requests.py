"""The ticket request framework: allow-lists, the verbs' declarations, the vault file,
the host lookup and the CLI's refusals, all before any host is touched."""

from __future__ import annotations

import io
import json
import stat
import string
from pathlib import Path

import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from hostops import cli
from hostops.core import runner
from hostops.core.errors import UsageError
from hostops.core.runner import PlaybookRun
from hostops.requests.verbs import (
    FTP_ACCOUNT,
    VERBS,
    VHOST,
    VaultFile,
    Verb,
    check_arguments,
    check_domain,
    check_host,
    check_login,
    check_php,
    generate_password,
    redact_extravars,
    resolve_inventory,
    verb_named,
)

ROOT = Path(__file__).resolve().parents[3]

# Attempts to get something other than a name through: shell, SQL, Jinja, paths, YAML,
# look-alike letters, control characters, a trailing newline.
HOSTILE = [
    "a.example;rm -rf /",
    "x'; DROP",
    'x"; DROP TABLE users; --',
    "$(id)",
    "`id`",
    "a.example && id",
    "a.example|id",
    "{{ lookup('pipe', 'id') }}",
    "{% raw %}",
    "../../etc/passwd",
    "a.example/../../etc",
    "a.example\n",
    "a.example\nb.example",
    "a.example\x00",
    "a b.example",
    "a\tb.example",
    "*.example",
    "a.example:8080",
    "\u0430.example",  # Cyrillic a
    "\uff53\uff48\uff4f\uff50.example",  # fullwidth "shop"
    "",
    " ",
]


@pytest.mark.parametrize(
    "domain",
    [
        "a.example",
        "shop.martin.example",
        "www.boulangerie-martin.fr",
        "1password.example",
        "x" * 63 + ".example",
        "a.b.c.d.e.example",
        "xn--bcher-kva.example",
    ],
)
def test_good_domains(domain: str) -> None:
    assert check_domain(domain) is None


@pytest.mark.parametrize(
    "domain",
    [
        *HOSTILE,
        "Shop.Example",
        "example",  # one label
        "a.example.",  # trailing dot
        ".a.example",
        "-a.example",
        "a-.example",
        "a..example",
        "a_b.example",
        "a.123",  # numeric top-level label
        "x" * 64 + ".example",  # label over 63
        ".".join(["abcdefghi"] * 26) + ".example",  # name over 253
        "192.0.2.10",
    ],
)
def test_bad_domains(domain: str) -> None:
    assert check_domain(domain) is not None


@pytest.mark.parametrize("login", ["martin", "m", "shop_ftp2", "a" + "b" * 31])
def test_good_logins(login: str) -> None:
    assert check_login(login) is None


@pytest.mark.parametrize(
    "login",
    [
        *HOSTILE,
        "Martin",
        "2martin",
        "_martin",
        "mar-tin",
        "mar.tin",
        "a" + "b" * 32,  # 33 characters
        "martin\n",
        "root",
        "anonymous",
        "ftp",
    ],
)
def test_bad_logins(login: str) -> None:
    assert check_login(login) is not None


def test_hosts_and_php() -> None:
    assert check_host("web01.martin.example") is None
    assert check_host("req-1") is None
    assert check_host("x;y") is not None
    assert check_host("-x") is not None
    assert check_host("web01\n") is not None
    assert check_php("8.4") is None
    assert check_php("8.2") is None
    for bad in ("7.4", "8", "8.4.1", "8.4;id", ""):
        assert check_php(bad) is not None


def test_every_problem_at_once_naming_argument_and_value() -> None:
    with pytest.raises(UsageError) as caught:
        check_arguments(
            FTP_ACCOUNT, {"host": "h;x", "domain": "a.example;rm -rf /", "user": "x'; DROP"}
        )
    problems = caught.value.problems
    assert caught.value.exit_status == 2
    assert len(problems) == 3
    assert problems[0].startswith("--host: 'h;x': ")
    assert problems[1].startswith("--domain: 'a.example;rm -rf /': ")
    assert problems[2].startswith('--user: "x\'; DROP": ')


def test_required_and_optional_arguments() -> None:
    with pytest.raises(UsageError, match="--domain: required"):
        check_arguments(VHOST, {"host": "h", "domain": None, "php": None})
    checked = check_arguments(VHOST, {"host": "h", "domain": "a.example", "php": None})
    assert checked == {"host": "h", "domain": "a.example"}
    assert VHOST.variables(checked) == {
        "web_vhost_domain": "a.example",
        "web_vhost_php": "",
        "web_vhost_php_allow_functions": [],
    }


def test_a_vhost_may_allow_php_functions_by_name() -> None:
    checked = check_arguments(
        VHOST, {"host": "h", "domain": "a.example", "allow_php_functions": "exec,popen"}
    )
    assert VHOST.variables(checked)["web_vhost_php_allow_functions"] == ["exec", "popen"]
    for bad in ("exec;id", "exec,,popen", "Exec", "", ",".join(["exec"] * 21), "exec popen"):
        with pytest.raises(UsageError) as caught:
            check_arguments(VHOST, {"host": "h", "domain": "a.example", "allow_php_functions": bad})
        assert caught.value.problems[0].startswith(f"--allow-php-functions: {bad!r}: ")


def test_database_verbs_use_their_own_checks() -> None:
    db_user = verb_named("db-user")
    assert db_user.secret is not None
    with pytest.raises(UsageError) as caught:
        check_arguments(
            db_user, {"host": "h", "engine": "oracle", "database": "a;b", "user": "x'; DROP"}
        )
    text = "\n".join(caught.value.problems)
    assert "--engine: 'oracle'" in text
    assert "--database: 'a;b'" in text
    assert '--user: "x\'; DROP"' in text
    # PostgreSQL's 63-byte limit, enforced rather than silently truncated
    with pytest.raises(UsageError, match="--name"):
        check_arguments(
            verb_named("database"), {"host": "h", "engine": "postgresql", "name": "a" * 64}
        )


def test_unknown_verb() -> None:
    with pytest.raises(UsageError, match="'mailbox' is not one of"):
        verb_named("mailbox")


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v.name)
def test_verb_declarations_are_whole(verb: Verb) -> None:
    assert (ROOT / "playbooks" / verb.playbook).is_file()
    flags = [a.flag for a in verb.arguments]
    assert flags[0] == "--host"
    assert len(set(flags)) == len(flags)
    playbook = (ROOT / "playbooks" / verb.playbook).read_text()
    assert "hostops_request_host" in playbook
    assert "hostops_request" in playbook  # the result, published with set_stats
    if verb.secret is not None:
        assert verb.secret.var in playbook
        good = {a.dest: "x" for a in verb.arguments}
        assert verb.secret.var not in verb.variables(
            {**good, "engine": "mariadb", "domain": "a.example", "php": ""}
        )


def test_generated_passwords() -> None:
    seen = {generate_password() for _ in range(200)}
    assert len(seen) == 200
    allowed = set(string.ascii_letters + string.digits + "-_")
    for password in seen:
        assert len(password) == 24
        assert set(password) <= allowed  # nothing a shell, SQL or Jinja would read


def test_redact_extravars(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "extravars").write_text(
        json.dumps({"ftp_account_user": "martin", "ftp_account_password": "s3cret-value"})
    )
    redact_extravars(tmp_path, ["ftp_account_password"])
    text = (env / "extravars").read_text()
    assert "s3cret-value" not in text
    assert json.loads(text) == {"ftp_account_user": "martin", "ftp_account_password": "<redacted>"}
    redact_extravars(tmp_path / "missing", ["x"])  # no file, nothing to do


@pytest.fixture
def vault_password(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text("correct horse battery staple\n")
    return path


def test_vault_file_round_trip(tmp_path: Path, vault_password: Path) -> None:
    first, second = generate_password(), generate_password()
    vault = VaultFile(tmp_path / "secrets.yml", vault_password)
    vault.check()  # no file yet: fine
    vault.store(("web01", "ftp_accounts", "martin"), {"password": first})
    vault.store(("web01", "ftp_accounts", "paul"), {"password": second})
    raw = (tmp_path / "secrets.yml").read_bytes()
    assert raw.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    assert first.encode() not in raw
    assert stat.S_IMODE((tmp_path / "secrets.yml").stat().st_mode) == 0o600
    # readable by Ansible itself, with the same password
    secret = VaultSecret(b"correct horse battery staple")
    data = yaml.safe_load(VaultLib([("default", secret)]).decrypt(raw))
    assert data["web01"]["ftp_accounts"]["martin"]["password"] == first
    assert data["web01"]["ftp_accounts"]["paul"]["password"] == second


def test_vault_file_with_the_wrong_password(tmp_path: Path, vault_password: Path) -> None:
    VaultFile(tmp_path / "secrets.yml", vault_password).store(("h", "k", "n"), {"password": "p"})
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    with pytest.raises(UsageError, match="cannot be decrypted"):
        VaultFile(tmp_path / "secrets.yml", wrong).check()
    with pytest.raises(UsageError, match="does not exist"):
        VaultFile(tmp_path / "secrets.yml", tmp_path / "nope").check()


def test_resolve_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"web01.martin.example": {}}}}))
    assert resolve_inventory("web01.martin.example", lab=False, inventories=[inventory]) == [
        inventory
    ]
    with pytest.raises(UsageError, match=r"--host: 'web02\.martin\.example' is not a host"):
        resolve_inventory("web02.martin.example", lab=False, inventories=[inventory])
    with pytest.raises(UsageError, match="--inventory: required"):
        resolve_inventory("web01.martin.example", lab=False, inventories=[])
    with pytest.raises(UsageError, match="does not exist"):
        resolve_inventory("web01.martin.example", lab=False, inventories=[tmp_path / "no.yml"])


def test_lab_without_a_lab_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTOPS_LAB_INVENTORY", str(tmp_path / "none.yml"))
    with pytest.raises(UsageError, match="--lab: no lab inventory"):
        resolve_inventory("req-1", lab=True, inventories=[])


@pytest.fixture
def no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Any playbook run would fail the test: the refusals happen before."""
    monkeypatch.setenv("HOSTOPS_STATE_DIR", str(tmp_path / "state"))

    def forbidden(self: runner.PlaybookRun) -> None:
        raise AssertionError(f"a playbook ran: {self.playbook}")

    monkeypatch.setattr(runner.PlaybookRun, "execute", forbidden)
    return tmp_path / "state"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["vhost", "--host", "web01", "--domain", "a.example;rm -rf /"],
            "--domain: 'a.example;rm -rf /': not a lowercase domain name",
        ),
        (
            ["ftp-account", "--host", "web01", "--domain", "a.example", "--user", "x'; DROP"],
            '--user: "x\'; DROP": not a login name',
        ),
        (["vhost", "--host", "web01", "--domain", "a.example", "--php", "7.4"], "--php: '7.4'"),
        (
            ["database", "--host", "web01", "--engine", "mariadb", "--name", "x;drop"],
            "--name: 'x;drop'",
        ),
        (
            [
                "database",
                "--host",
                "web01",
                "--engine",
                "mariadb",
                "--name",
                "shop",
                "--domain",
                "shop example",
            ],
            "--domain: 'shop example': must be a lowercase domain name",
        ),
    ],
)
def test_cli_refuses_before_anything_runs(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    no_runs: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"web01": {}}}}))
    status = cli.main(["request", *argv, "--inventory", str(inventory)])
    assert status == 2
    assert expected in capsys.readouterr().err
    assert not no_runs.exists()  # not even a run directory


def test_cli_vault_file_needs_a_password_file(
    tmp_path: Path,
    no_runs: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"web01": {}}}}))
    argv = ["request", "ftp-account", "--host", "web01", "--domain", "a.example"]
    argv += ["--user", "martin", "--inventory", str(inventory)]
    status = cli.main([*argv, "--vault-file", str(tmp_path / "v.yml")])
    assert status == 2
    assert "--vault-file: needs a vault password file" in capsys.readouterr().err


def test_cli_unknown_host(
    tmp_path: Path, no_runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"web01": {}}}}))
    argv = ["request", "vhost", "--host", "web02", "--domain", "a.example"]
    status = cli.main([*argv, "--inventory", str(inventory)])
    assert status == 2
    assert "--host: 'web02' is not a host of the inventory" in capsys.readouterr().err


REFUSING = """---
- name: A request that a server refuses, or not
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Refuse when told to
      ansible.builtin.include_tasks: tasks/refuse-request.yml
      vars:
        hostops_request_refusal: "localhost cannot take this: {{ why }}"
      when: why != ''

    - name: Serve the request
      ansible.builtin.debug:
        msg: served
"""


@pytest.mark.parametrize("why", ["a domain on a custom stack", ""])
def test_a_refusal_reaches_the_cli_as_data_not_as_a_task_name(
    why: str, tmp_path: Path, collection_root: Path
) -> None:
    """playbooks/tasks/refuse-request.yml publishes the refusal (hostops_request_refused),
    which run_request turns into bad input (exit 2), and fails the run (an AWX job fails);
    the control: no refusal, no such data, the run goes on. Real ansible-playbook runs."""
    root = collection_root
    (root / "playbooks" / "tasks").mkdir()
    real = Path(__file__).resolve().parents[3] / "playbooks" / "tasks" / "refuse-request.yml"
    (root / "playbooks" / "tasks" / "refuse-request.yml").write_text(real.read_text())
    (root / "playbooks" / "refusing.yml").write_text(REFUSING)
    result = PlaybookRun(
        playbook="refusing.yml",
        inventory=[root / "inventory.yml"],
        run_dir=tmp_path / "run",
        extravars={"why": why},
        out=io.StringIO(),
    ).execute()
    if why:
        assert not result.ok
        assert result.artifacts["hostops_request_refused"] == {
            "localhost": f"localhost cannot take this: {why}"
        }
    else:
        assert result.ok, result.failure_lines
        assert "hostops_request_refused" not in result.artifacts
