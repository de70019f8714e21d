"""MariaDB: listing, checksums, dumps and loads over the local socket."""

# SQL here is built from names the server itself listed, always quoted with the quote_*
# functions (engines.base.quote_literal and this module's quoting): there is no user input
# to inject (ruff's S608).
# ruff: noqa: S608

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..common import SCRATCH_PREFIX, Failure
from ..process import run
from .base import quote_literal

MARIADB_SYSTEM_SCHEMAS = ("information_schema", "performance_schema", "mysql", "sys")

MARIADB_DUMP_TRAILER = b"-- Dump completed"


def quote_mariadb(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MariaDB:
    """MariaDB as root over the local socket (Debian's unix_socket authentication)."""

    engine = "mariadb"

    @staticmethod
    def installed() -> bool:
        return any(Path(p).exists() for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld"))

    @staticmethod
    def dump_tool() -> str:
        return shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mariadb-dump"

    def query(self, sql: str, database: str | None = None) -> list[list[str]]:
        argv = ["mariadb", "--batch", "--skip-column-names", "--raw", "--execute", sql]
        if database is not None:
            argv.insert(1, f"--database={database}")
        out = run(argv, what="mariadb query").stdout.decode("utf-8", "replace")
        return [line.split("\t") for line in out.splitlines() if line]

    def version(self) -> str:
        return self.query("SELECT VERSION()")[0][0]

    def databases(self) -> list[str]:
        excluded = ",".join(quote_literal(s) for s in MARIADB_SYSTEM_SCHEMAS)
        rows = self.query(
            "SELECT schema_name FROM information_schema.schemata "
            f"WHERE schema_name NOT IN ({excluded}) AND schema_name NOT LIKE "
            f"{quote_literal(SCRATCH_PREFIX + '%')} ORDER BY schema_name"
        )
        return [row[0] for row in rows]

    def exists(self, database: str) -> bool:
        rows = self.query(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = "
            + quote_literal(database)
        )
        return rows[0][0] == "1"

    def info(self, database: str) -> dict[str, str]:
        row = self.query(
            "SELECT default_character_set_name, default_collation_name "
            "FROM information_schema.schemata WHERE schema_name = " + quote_literal(database)
        )[0]
        return {"charset": row[0], "collation": row[1]}

    def tables(self, database: str) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"{quote_literal(database)} AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [row[0] for row in rows]

    def checksums(self, database: str) -> dict[str, dict[str, Any]]:
        """Per table: CHECKSUM TABLE ... EXTENDED (reads every row) and the row count."""
        tables = self.tables(database)
        if not tables:
            return {}
        listed = ", ".join(f"{quote_mariadb(database)}.{quote_mariadb(t)}" for t in tables)
        # one row per table, in the order asked
        checked = self.query(f"CHECKSUM TABLE {listed} EXTENDED")
        if len(checked) != len(tables):
            raise Failure(f"CHECKSUM TABLE in {database}: {len(checked)} rows for {len(tables)}")
        sums = {table: row[-1] for table, row in zip(tables, checked, strict=True)}
        counts = self.query(
            " UNION ALL ".join(
                f"SELECT {quote_literal(t)}, COUNT(*) FROM {quote_mariadb(database)}."
                f"{quote_mariadb(t)}"
                for t in tables
            )
        )
        rows = {name: int(count) for name, count in counts}
        return {t: {"checksum": sums.get(t, "NULL"), "rows": rows.get(t, 0)} for t in tables}

    def dump(self, database: str, target: Path) -> None:
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            run(
                [
                    self.dump_tool(),
                    "--single-transaction",
                    "--routines",
                    "--events",
                    "--triggers",
                    "--hex-blob",
                    "--default-character-set=utf8mb4",
                    "--",
                    database,
                ],
                what=f"mariadb-dump {database}",
                stdout=out,
            )
        with open(partial, "rb") as dumped:
            dumped.seek(max(partial.stat().st_size - 200, 0))
            if MARIADB_DUMP_TRAILER not in dumped.read():
                raise Failure(f"mariadb-dump {database}: the dump is truncated (no trailer)")
        partial.rename(target)

    def dump_users(self, target: Path) -> None:
        with open(target, "wb") as out:
            run(
                [self.dump_tool(), "--system=users"],
                what="mariadb-dump --system=users",
                stdout=out,
            )

    def create(self, database: str, info: dict[str, str]) -> None:
        options = ""
        if info.get("charset"):
            options += f" CHARACTER SET {info['charset']}"
        if info.get("collation"):
            options += f" COLLATE {info['collation']}"
        self.query(f"CREATE DATABASE {quote_mariadb(database)}{options}")

    def drop(self, database: str) -> None:
        self.query(f"DROP DATABASE IF EXISTS {quote_mariadb(database)}")

    def load(self, database: str, dump: Path) -> None:
        with open(dump, "rb") as stream:
            run(
                ["mariadb", "--batch", f"--database={database}"],
                what=f"loading the dump into {database}",
                stdin=stream,
            )
