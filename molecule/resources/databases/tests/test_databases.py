"""MariaDB and PostgreSQL of a custom order, and the databases and users made by request
(alteo.hostops.mariadb, alteo.hostops.postgresql, playbooks/request-*.yml), checked on the
converged host. The converge requested on MariaDB the databases shop_db and shopxdb
(their names differ only where an unescaped _ would be a grant wildcard) with the users
shop_user and other_user; on PostgreSQL shop_db with shop_user, and LONG_DB with
LONG_USER, names of 63 bytes each."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

PASSWORD = os.environ["HOSTOPS_REQUEST_PASSWORD"]
LONG_DB = "long_database_name_taking_all_sixty_three_bytes_postgres_allows"
LONG_USER = "long_user_name_taking_all_the_sixty_three_bytes_postgres_allows"


# -- helpers --------------------------------------------------------------------------------


def listeners(host: Any, process: str) -> list[str]:
    """Local addresses of the TCP sockets ``process`` listens on."""
    out = host.check_output("ss -H -ltnp")
    return [line.split()[3] for line in out.splitlines() if f'(("{process}"' in line]


def memtotal_mb(host: Any) -> int:
    """The host's memory as Ansible's ansible_memtotal_mb reads it (MemTotal kB // 1024)."""
    kb = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    return kb // 1024


def mariadb_root(host: Any, sql: str) -> str:
    return str(host.check_output("mariadb -N -B -e %s", sql))


def mariadb_tcp(host: Any, user: str, password: str, sql: str, database: str = "") -> Any:
    return host.run(
        "mariadb --protocol=TCP -h 127.0.0.1 -u %s --password=%s -N -B -D %s -e %s",
        user,
        password,
        database,
        sql,
    )


def psql_admin(host: Any, sql: str, database: str = "postgres") -> str:
    """As root, who acts as postgres through the role's ident map."""
    return str(host.check_output("psql -U postgres -d %s -XAtc %s", database, sql))


def psql_tcp(host: Any, user: str, password: str, database: str, sql: str) -> Any:
    return host.run(
        "env PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -w -h 127.0.0.1 -U %s -d %s -XAtc %s",
        password,
        user,
        database,
        sql,
    )


def run_request(
    host: Any, playbook: str, password: str = PASSWORD, **extravars: str
) -> dict[str, Any]:
    """Run a request playbook through ansible-runner, as the hostops CLI does, against the
    scenario's host, the password in the environment (as from an AWX credential); return
    its status, changes, published result and failure messages."""
    name = host.backend.get_hostname()
    root = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab-hosts.yml"
    with tempfile.TemporaryDirectory() as private:
        runner = ansible_runner.run(
            private_data_dir=private,
            project_dir=str(root),
            playbook=str(root / "playbooks" / playbook),
            inventory=str(inventory),
            extravars={"hostops_request_host": name, **extravars},
            envvars={
                "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
                "ANSIBLE_COLLECTIONS_PATH": str(root / "collections"),
                "HOSTOPS_REQUEST_PASSWORD": password,
            },
            suppress_env_files=True,
            quiet=True,
        )
        stats: dict[str, Any] = {}
        messages = []
        events = list(runner.events)
        for event in events:
            data = event.get("event_data", {})
            if event.get("event") == "playbook_on_stats":
                stats = data.get("artifact_data") or {}
            if event.get("event") in ("runner_on_failed", "runner_item_on_failed"):
                messages.append(str(data.get("res", {}).get("msg", "")))
        counts = runner.stats or {}
        return {
            "status": runner.status,
            "changed": sum((counts.get("changed") or {}).values()),
            "request": (stats.get("hostops_request") or {}).get(name),
            "failures": messages,
            # everything the run reported (task results, output), to look for secrets in
            "events": json.dumps(events),
        }


def forget_verify_objects(host: Any, engine: str) -> None:
    """Remove what the tests below request, so that each starts afresh (verify may rerun)."""
    if engine == "mariadb":
        mariadb_root(host, "DROP DATABASE IF EXISTS verify_db")
        mariadb_root(host, "DROP USER IF EXISTS verify_user@localhost")
    else:
        psql_admin(host, "DROP DATABASE IF EXISTS verify_db")
        psql_admin(host, "DROP ROLE IF EXISTS verify_user")
        psql_admin(host, "DROP ROLE IF EXISTS verify_db")


# -- MariaDB server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "unit"), [("mariadb-server", "mariadb"), ("postgresql-17", "postgresql@17-main")]
)
def test_the_servers_were_started_once_by_the_role_not_by_their_packages(
    host: Any, package: str, unit: str
) -> None:
    # dpkg's output in apt's log: the package's scripts were refused the start (the
    # server never ran with Debian's defaults) ...
    log = host.check_output("cat /var/log/apt/term.log")
    assert f"Setting up {package} (" in log
    setup = log.split(f"Setting up {package} (", 1)[1].split("Setting up ", 1)[0]
    assert "policy-rc.d" in setup and "denied execution of start" in setup, setup
    # ... and the role started it once, with its configuration: no restart after
    starts = host.check_output("journalctl -b -o cat -u %s.service", unit).splitlines()
    assert [line for line in starts if line.startswith(f"Started {unit}.service")] != []
    assert len([line for line in starts if line.startswith("Started ")]) == 1, starts
    assert not [line for line in starts if line.startswith("Stopping ")], starts
    assert host.service(unit).is_running
    # Debian's unit for all the clusters too (its start by the package was held with them)
    assert host.service("postgresql").is_running
    assert not host.file("/usr/sbin/policy-rc.d").exists


def test_mariadb_runs_and_listens_on_loopback_only(host: Any) -> None:
    service = host.service("mariadb")
    assert service.is_running
    assert service.is_enabled
    assert listeners(host, "mariadbd") == ["127.0.0.1:3306"]


def test_mariadb_root_through_the_socket_only(host: Any) -> None:
    assert mariadb_root(host, "SELECT CURRENT_USER()") == "root@localhost"
    create = mariadb_root(host, "SHOW CREATE USER root@localhost")
    assert create.endswith("IDENTIFIED VIA unix_socket"), create
    assert mariadb_root(host, "SELECT Host FROM mysql.global_priv WHERE User = 'root'") == (
        "localhost"
    )
    # another system user cannot be root through the socket
    other = host.run("runuser -u nobody -- mariadb -u root -e 'SELECT 1'")
    assert other.rc != 0
    assert "Access denied for user 'root'@'localhost'" in other.stderr
    # and root has no password that TCP could use
    tcp = mariadb_tcp(host, "root", "anything", "SELECT 1")
    assert tcp.rc != 0
    assert "Access denied for user 'root'@'localhost'" in tcp.stderr


def test_mariadb_no_anonymous_users_no_test_database(host: Any) -> None:
    assert mariadb_root(host, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''") == "0"
    assert mariadb_root(host, "SHOW DATABASES LIKE 'test'") == ""
    assert mariadb_root(host, r"SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'test%'") == "0"


def test_mariadb_tuned_from_memory(host: Any) -> None:
    planned = int(memtotal_mb(host) * 0.25)
    pool = max((planned * 3 // 4) // 128 * 128, 128)
    log = min(max(pool // 4, 96), 512)
    tmp = min(max(planned // 64, 16), 256)
    got = mariadb_root(
        host,
        "SELECT @@innodb_buffer_pool_size, @@innodb_log_file_size, @@tmp_table_size,"
        " @@max_heap_table_size, @@max_connections, @@local_infile",
    ).split()
    mib = 1024 * 1024
    assert [int(value) for value in got] == [pool * mib, log * mib, tmp * mib, tmp * mib, 151, 0]
    conf = host.file("/etc/mysql/mariadb.conf.d/90-hostops.cnf")
    assert conf.user == "root"
    assert conf.mode == 0o644


# -- PostgreSQL server ----------------------------------------------------------------------


def test_postgresql_runs_and_listens_on_loopback_only(host: Any) -> None:
    service = host.service("postgresql@17-main")
    assert service.is_running
    assert service.is_enabled
    assert listeners(host, "postgres") == ["127.0.0.1:5432"]


def test_postgresql_peer_authentication_on_the_socket(host: Any) -> None:
    as_postgres = host.check_output("runuser -u postgres -- psql -XAtc 'SELECT current_user'")
    assert as_postgres == "postgres"
    # root acts as postgres through the ident map, and as nobody else
    assert psql_admin(host, "SELECT current_user") == "postgres"
    other = host.run("psql -U shop_user -d shop_db -XAtc 'SELECT 1'")
    assert other.rc != 0
    assert 'Peer authentication failed for user "shop_user"' in other.stderr


def test_postgresql_scram_over_tcp(host: Any) -> None:
    rules = psql_admin(
        host,
        "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','),"
        " coalesce(address, ''), auth_method FROM pg_hba_file_rules ORDER BY rule_number",
    ).splitlines()
    assert rules == [
        "local|all|postgres||peer",
        "local|samerole|all||peer",
        "host|samerole|all|127.0.0.1|scram-sha-256",
    ]
    assert psql_admin(host, "SHOW password_encryption") == "scram-sha-256"
    stored = psql_admin(host, "SELECT rolpassword FROM pg_authid WHERE rolname = 'shop_user'")
    assert stored.startswith("SCRAM-SHA-256$")
    # the superuser has no password: nothing to guess over TCP
    superuser = psql_tcp(host, "postgres", "anything", "postgres", "SELECT 1")
    assert superuser.rc != 0
    assert 'password authentication failed for user "postgres"' in superuser.stderr


def test_postgresql_tuned_from_memory(host: Any) -> None:
    planned = int(memtotal_mb(host) * 0.25)
    shared = max(planned // 4, 128)
    expected = {
        "shared_buffers": shared,
        "effective_cache_size": max(planned * 3 // 4, 256),
        "work_mem": max((planned - shared) // (100 * 3), 4),
        "maintenance_work_mem": min(max(planned // 16, 64), 2048),
    }
    for name, mib in expected.items():
        got = psql_admin(host, f"SELECT pg_size_bytes(current_setting('{name}')) / 1048576")
        assert int(got) == mib, name
    assert psql_admin(host, "SHOW max_connections") == "100"


def test_local_facts(host: Any) -> None:
    """What the roles publish for other roles and the requests, as Ansible reads it."""
    for name in ("mariadb", "postgresql"):
        fact = host.file(f"/etc/ansible/facts.d/{name}.fact")
        assert fact.user == "root"
        assert fact.mode == 0o644
    local = host.ansible("setup", "filter=ansible_local gather_subset=local")
    facts = local["ansible_facts"]["ansible_local"]
    assert facts["mariadb"]["managed_by"] == "alteo.hostops.mariadb"
    assert facts["mariadb"]["socket"] == "/run/mysqld/mysqld.sock"
    assert facts["mariadb"]["port"] == 3306
    assert facts["mariadb"]["bind_address"] == "127.0.0.1"
    assert facts["postgresql"]["managed_by"] == "alteo.hostops.postgresql"
    assert facts["postgresql"]["version"] == "17"
    assert facts["postgresql"]["port"] == 5432
    assert facts["postgresql"]["socket_dir"] == "/var/run/postgresql"
    assert facts["postgresql"]["service"] == "postgresql@17-main"


# -- databases and users made by request ----------------------------------------------------


def test_mariadb_user_reaches_its_database(host: Any) -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS t (n INT); INSERT INTO t VALUES (42);"
        " SELECT SUM(n) FROM t; DROP TABLE t"
    )
    result = mariadb_tcp(host, "shop_user", PASSWORD, sql, "shop_db")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "42"
    shown = mariadb_tcp(host, "shop_user", PASSWORD, "SHOW DATABASES").stdout.split()
    assert shown == ["information_schema", "shop_db"]


def test_mariadb_underscore_is_no_wildcard_in_the_grant(host: Any) -> None:
    """`shop_db`.* unescaped would also grant shopxdb."""
    result = mariadb_tcp(host, "shop_user", PASSWORD, "SELECT 1", "shopxdb")
    assert result.rc != 0
    assert "Access denied for user 'shop_user'@'localhost' to database 'shopxdb'" in result.stderr


def test_mariadb_other_databases_user_is_refused(host: Any) -> None:
    assert mariadb_tcp(host, "other_user", PASSWORD, "SELECT 1", "shopxdb").rc == 0
    result = mariadb_tcp(host, "other_user", PASSWORD, "SELECT 1", "shop_db")
    assert result.rc != 0
    assert "Access denied for user 'other_user'@'localhost' to database 'shop_db'" in (
        result.stderr
    )


def test_postgresql_user_reaches_its_database(host: Any) -> None:
    sql = "CREATE TABLE t (n int); INSERT INTO t VALUES (42); SELECT sum(n) FROM t; DROP TABLE t"
    result = psql_tcp(host, "shop_user", PASSWORD, "shop_db", sql)
    assert result.rc == 0, result.stderr
    assert "42" in result.stdout.split()


@pytest.mark.parametrize(
    ("user", "database"),
    [
        ("shop_user", LONG_DB),
        (LONG_USER, "shop_db"),
        ("shop_user", "postgres"),
        ("shop_user", "template1"),
    ],
)
def test_postgresql_user_is_refused_other_databases(host: Any, user: str, database: str) -> None:
    result = psql_tcp(host, user, PASSWORD, database, "SELECT 1")
    assert result.rc != 0
    assert f'no pg_hba.conf entry for host "127.0.0.1", user "{user}", database "{database}"' in (
        result.stderr
    )


def test_postgresql_connect_privilege_is_the_second_lock(host: Any) -> None:
    """Behind pg_hba.conf, PUBLIC cannot connect to a requested database; its user can."""
    sql = (
        "SELECT has_database_privilege('shop_user', 'shop_db', 'CONNECT'),"
        f" has_database_privilege('{LONG_USER}', 'shop_db', 'CONNECT'),"
        f" has_database_privilege('shop_user', '{LONG_DB}', 'CONNECT')"
    )
    assert psql_admin(host, sql) == "t|f|f"
    assert psql_admin(host, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'shop_db'") == "f"


def test_postgresql_63_byte_names(host: Any) -> None:
    assert len(LONG_DB.encode()) == 63
    assert len(LONG_USER.encode()) == 63
    # stored whole, not truncated: the only names of 63 bytes are these
    long_names = psql_admin(
        host,
        "SELECT datname FROM pg_database WHERE octet_length(datname) = 63"
        " UNION ALL SELECT rolname FROM pg_roles WHERE octet_length(rolname) = 63 ORDER BY 1",
    )
    assert long_names.splitlines() == [LONG_DB, LONG_DB, LONG_USER]  # database, owner role, user
    result = psql_tcp(host, LONG_USER, PASSWORD, LONG_DB, "SELECT current_user, current_database()")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == f"{LONG_USER}|{LONG_DB}"


# -- the request playbooks run as the CLI runs them -----------------------------------------


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_requests_report_created_then_exists(host: Any, engine: str) -> None:
    """A new database is reported created, then exists with nothing changed; a new user
    gets the password passed as the extra variable request_password (it wins over the
    environment), and the password shows in no event of the run."""
    forget_verify_objects(host, engine)
    first = run_request(
        host, "request-database.yml", request_engine=engine, request_database="verify_db"
    )
    assert first["status"] == "successful", first["failures"]
    assert first["request"] == {"status": "created", "engine": engine, "database": "verify_db"}
    assert first["changed"] > 0
    again = run_request(
        host, "request-database.yml", request_engine=engine, request_database="verify_db"
    )
    assert again["status"] == "successful", again["failures"]
    assert again["request"] == {"status": "exists", "engine": engine, "database": "verify_db"}
    assert again["changed"] == 0

    password = "extra-Variable-pw-2027"  # noqa: S105 - a test value
    user = run_request(
        host,
        "request-db-user.yml",
        request_engine=engine,
        request_database="verify_db",
        request_user="verify_user",
        request_password=password,
    )
    assert user["status"] == "successful", user["failures"]
    assert user["request"] == {
        "status": "created",
        "engine": engine,
        "database": "verify_db",
        "user": "verify_user",
    }
    assert password not in user["events"]
    if engine == "mariadb":
        assert mariadb_tcp(host, "verify_user", password, "SELECT 1", "verify_db").rc == 0
        assert mariadb_tcp(host, "verify_user", PASSWORD, "SELECT 1", "verify_db").rc != 0
    else:
        assert psql_tcp(host, "verify_user", password, "verify_db", "SELECT 1").rc == 0
        assert psql_tcp(host, "verify_user", PASSWORD, "verify_db", "SELECT 1").rc != 0


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_existing_user_keeps_its_password(host: Any, engine: str) -> None:
    other_password = "another-Password-2027-x"  # noqa: S105 - a test value
    result = run_request(
        host,
        "request-db-user.yml",
        password=other_password,
        request_engine=engine,
        request_database="shop_db",
        request_user="shop_user",
    )
    assert result["status"] == "successful", result["failures"]
    assert result["request"] == {
        "status": "exists",
        "engine": engine,
        "database": "shop_db",
        "user": "shop_user",
    }
    assert result["changed"] == 0
    assert other_password not in result["events"]
    if engine == "mariadb":
        assert mariadb_tcp(host, "shop_user", PASSWORD, "SELECT 1", "shop_db").rc == 0
        assert mariadb_tcp(host, "shop_user", other_password, "SELECT 1", "shop_db").rc != 0
    else:
        assert psql_tcp(host, "shop_user", PASSWORD, "shop_db", "SELECT 1").rc == 0
        assert psql_tcp(host, "shop_user", other_password, "shop_db", "SELECT 1").rc != 0


@pytest.mark.parametrize(("engine", "other"), [("mariadb", "shopxdb"), ("postgresql", LONG_DB)])
def test_user_of_one_database_is_refused_another(host: Any, engine: str, other: str) -> None:
    result = run_request(
        host,
        "request-db-user.yml",
        request_engine=engine,
        request_database=other,
        request_user="shop_user",
    )
    assert result["status"] == "failed"
    assert result["changed"] == 0
    assert any("a user belongs to one database" in msg for msg in result["failures"]), result
    if engine == "mariadb":
        assert mariadb_tcp(host, "shop_user", PASSWORD, "SELECT 1", other).rc != 0
    else:
        assert psql_tcp(host, "shop_user", PASSWORD, other, "SELECT 1").rc != 0


@pytest.mark.parametrize(
    ("engine", "name"),
    [
        ("mariadb", "x`; DROP DATABASE shop_db; --"),
        ("postgresql", LONG_DB + "x"),  # 64 bytes: PostgreSQL would truncate it to LONG_DB
    ],
)
def test_playbook_refuses_bad_names_and_creates_nothing(host: Any, engine: str, name: str) -> None:
    """Runs that do not come through the CLI (AWX) meet the same rules in the roles."""
    if engine == "mariadb":
        before = mariadb_root(host, "SHOW DATABASES")
    else:
        before = psql_admin(host, "SELECT datname FROM pg_database ORDER BY 1")
    result = run_request(host, "request-database.yml", request_engine=engine, request_database=name)
    assert result["status"] == "failed"
    assert result["changed"] == 0
    assert any("is not allowed" in msg for msg in result["failures"]), result
    if engine == "mariadb":
        assert mariadb_root(host, "SHOW DATABASES") == before
    else:
        assert psql_admin(host, "SELECT datname FROM pg_database ORDER BY 1") == before


def test_a_domain_is_refused_on_a_custom_stack_and_creates_nothing(host: Any) -> None:
    """--domain names a Plesk subscription; a custom stack's databases belong to no vhost."""
    before = mariadb_root(host, "SHOW DATABASES")
    result = run_request(
        host, "request-database.yml", request_engine="mariadb", request_database="dom_db",
        request_domain="www.example.fr",
    )  # fmt: skip
    assert result["status"] == "failed"
    assert result["changed"] == 0
    assert any("give no --domain" in msg for msg in result["failures"]), result
    assert mariadb_root(host, "SHOW DATABASES") == before


def test_short_password_is_refused_and_never_shown(host: Any) -> None:
    password = "short-Pw-x9"  # noqa: S105 - a test value
    result = run_request(
        host,
        "request-db-user.yml",
        password=password,
        request_engine="postgresql",
        request_database="shop_db",
        request_user="new_user",
    )
    assert result["status"] == "failed"
    assert psql_admin(host, "SELECT count(*) FROM pg_roles WHERE rolname = 'new_user'") == "0"
    assert password not in result["events"]
