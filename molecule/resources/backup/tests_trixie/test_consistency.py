"""Dumps taken while a writer inserts rows throughout them (Debian 13, server A).

In each transaction the writer inserts an order, its lines one statement at a time with a
pause in between (a dump that did not read one snapshot of the database would catch an
order without all its lines), and adds one to a counter row. The restored MariaDB and
PostgreSQL databases must each be one point in time: every line's order exists, every
order has exactly its lines and total, the counter equals the number of orders, and that
number lies between the counts read just before and just after the run.
"""

# The SQL names the test's own databases and tables.
# ruff: noqa: S608

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from backup_helpers import (
    DUMP_DIR,
    SCRIPT,
    mariadb,
    psql,
    script,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("backup_timers_stopped")

MY_DB = "ledger_my"
PG_DB = "ledger_pg"
RESTORED = "_restored"

MARIADB_SCHEMA = f"""
DROP DATABASE IF EXISTS {MY_DB};
CREATE DATABASE {MY_DB};
USE {MY_DB};
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, n_lines INT NOT NULL,
                     total INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE order_lines (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL,
                          amount INT NOT NULL,
                          FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;
CREATE TABLE counter (id INT PRIMARY KEY, orders INT NOT NULL) ENGINE=InnoDB;
INSERT INTO counter VALUES (1, 0);
"""

PG_SCHEMA = """
CREATE TABLE orders (id serial PRIMARY KEY, n_lines int NOT NULL, total int NOT NULL);
CREATE TABLE order_lines (id serial PRIMARY KEY,
                          order_id int NOT NULL REFERENCES orders (id), amount int NOT NULL);
CREATE TABLE counter (id int PRIMARY KEY, orders int NOT NULL);
INSERT INTO counter VALUES (1, 0);
"""

# One transaction per loop: an order of n lines (amounts 1..n, total n(n+1)/2), each line
# its own statement after a pause, then the counter. The client reads its standard input
# as it comes, so the transactions run one after another until the unit is stopped (an
# open transaction is then rolled back).
WRITER = {
    "mariadb": (
        "i=0; while :; do i=$((i+1)); n=$((i % 4 + 2)); "
        "printf 'START TRANSACTION;\\nINSERT INTO orders (n_lines, total) VALUES (%d, %d);\\n"
        "SET @o = LAST_INSERT_ID();\\n' $n $((n * (n + 1) / 2)); "
        "for a in $(seq $n); do printf 'DO SLEEP(0.004);\\n"
        "INSERT INTO order_lines (order_id, amount) VALUES (@o, %d);\\n' $a; done; "
        "printf 'UPDATE counter SET orders = orders + 1 WHERE id = 1;\\nCOMMIT;\\n'; "
        f"done | mariadb --batch {MY_DB}"
    ),
    "postgresql": (
        "i=0; while :; do i=$((i+1)); n=$((i % 4 + 2)); "
        "printf 'BEGIN;\\nINSERT INTO orders (n_lines, total) VALUES (%d, %d);\\n' "
        "$n $((n * (n + 1) / 2)); "
        "for a in $(seq $n); do printf 'SELECT pg_sleep(0.004);\\nINSERT INTO order_lines "
        "(order_id, amount) VALUES (currval(%s), %d);\\n' \"'orders_id_seq'\" $a; done; "
        "printf 'UPDATE counter SET orders = orders + 1 WHERE id = 1;\\nCOMMIT;\\n'; "
        f"done | runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d {PG_DB} >/dev/null"
    ),
}

# Each is 0 in a database that is one point in time of the writer's work.
INVARIANTS = {
    "lines without their order": (
        "SELECT COUNT(*) FROM order_lines l LEFT JOIN orders o ON o.id = l.order_id "
        "WHERE o.id IS NULL"
    ),
    "orders without all their lines or with a wrong total": (
        "SELECT COUNT(*) FROM orders o LEFT JOIN (SELECT order_id, COUNT(*) AS c, "
        "SUM(amount) AS s FROM order_lines GROUP BY order_id) x ON x.order_id = o.id "
        "WHERE COALESCE(x.c, 0) <> o.n_lines OR COALESCE(x.s, 0) <> o.total"
    ),
    "counter minus orders": (
        "SELECT (SELECT orders FROM counter WHERE id = 1) - (SELECT COUNT(*) FROM orders)"
    ),
}


def query(host: Any, engine: str, database: str, sql: str) -> int:
    if engine == "mariadb":
        return int(mariadb(host, f"USE {database}; {sql}")[0][0])
    return int(psql(host, sql, database)[0][0])


def violations(host: Any, engine: str, database: str) -> dict[str, int]:
    return {name: query(host, engine, database, sql) for name, sql in INVARIANTS.items()}


def orders(host: Any, engine: str, database: str) -> int:
    return query(host, engine, database, "SELECT COUNT(*) FROM orders")


@pytest.fixture
def writers(host: Any) -> Iterator[dict[str, str]]:
    """A database of each engine on A, and a writer unit adding to each."""
    mariadb(host, MARIADB_SCHEMA)
    host.check_output(f"runuser -u postgres -- dropdb --if-exists {PG_DB}")
    host.check_output(f"runuser -u postgres -- createdb {PG_DB}")
    psql(host, PG_SCHEMA, PG_DB)
    units = {engine: f"hostops-test-writer-{engine}" for engine in WRITER}
    try:
        for engine, unit in units.items():
            started = host.run(
                f"systemd-run --unit={unit} --collect /bin/bash -c {shlex.quote(WRITER[engine])}"
            )
            assert started.rc == 0, started.stderr
        yield units
    finally:
        host.run(f"systemctl stop {' '.join(units.values())}")
        mariadb(host, f"DROP DATABASE IF EXISTS {MY_DB}; DROP DATABASE IF EXISTS {MY_DB}{RESTORED}")
        for name in (PG_DB, PG_DB + RESTORED):
            host.run(f"runuser -u postgres -- dropdb --if-exists {name}")


def test_dumps_taken_during_writes_restore_to_one_point_in_time(
    host: Any, baseline: Any, writers: Any
) -> None:
    databases = {"mariadb": MY_DB, "postgresql": PG_DB}
    # both writers are committing
    assert wait_for(
        lambda: all(orders(host, e, d) >= 20 for e, d in databases.items()), timeout=60
    ), {e: orders(host, e, d) for e, d in databases.items()}
    # positive control: a read that sees uncommitted rows does catch the writer in the
    # middle of a transaction, so the checks below can tell a torn state from a whole one
    dirty = (
        f"SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED; USE {MY_DB}; "
        + INVARIANTS["orders without all their lines or with a wrong total"]
    )
    assert wait_for(lambda: int(mariadb(host, dirty)[0][0]) > 0, timeout=30, step=0.05)

    before = {e: orders(host, e, d) for e, d in databases.items()}
    run = host.run("systemctl start hostops-backup-dumps.service")
    after = {e: orders(host, e, d) for e, d in databases.items()}
    assert run.rc == 0, run.stderr
    for unit in writers.values():  # still writing when the run ended
        assert host.run(f"systemctl is-active --quiet {unit}").rc == 0, unit
    host.run(f"systemctl stop {' '.join(writers.values())}")

    # the writers changed both databases while each was being dumped: the checksums taken
    # just before and just after its dump differ
    manifest = json.loads(
        host.check_output(
            f"{SCRIPT} restic dump --tag hostops,dumps latest {DUMP_DIR}/manifest.json"
        )
    )
    my_tables = manifest["engines"]["mariadb"]["databases"][MY_DB]["tables"]
    clusters = manifest["engines"]["postgresql"]["clusters"]
    pg_tables = next(iter(clusters.values()))["databases"][PG_DB]["tables"]
    assert my_tables["orders"]["stable"] is False, my_tables
    assert pg_tables["public.orders"]["stable"] is False, pg_tables

    for engine, name in databases.items():
        rc, report, err = script(
            host,
            "restore-db",
            "--database",
            name,
            "--engine",
            engine,
            "--as",
            name + RESTORED,
            "--at",
            "latest",
        )
        assert rc == 0, err + json.dumps(report)
        restored = name + RESTORED
        assert violations(host, engine, restored) == dict.fromkeys(INVARIANTS, 0), engine
        count = orders(host, engine, restored)
        assert before[engine] <= count <= after[engine], (engine, before, count, after)
        assert after[engine] > before[engine]  # rows were written while the run went on
    # the foreign keys are declared again in the restored databases, not only satisfied
    fk = mariadb(
        host,
        "SELECT COUNT(*) FROM information_schema.referential_constraints "
        f"WHERE constraint_schema = '{MY_DB}{RESTORED}' AND referenced_table_name = 'orders'",
    )
    assert fk == [["1"]]
    pg_fk = psql(
        host,
        "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' "
        "AND confrelid = 'public.orders'::regclass",
        PG_DB + RESTORED,
    )
    assert pg_fk == [["1"]]
