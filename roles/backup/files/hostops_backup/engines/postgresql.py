"""PostgreSQL, per cluster: listing, checksums, dumps and loads as postgres."""

# SQL here is built from names the server itself listed, always quoted with the quote_*
# functions (engines.base.quote_literal and this module's quoting): there is no user input
# to inject (ruff's S608).
# ruff: noqa: S608

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common import SCRATCH_PREFIX, Failure
from ..process import run
from .base import quote_literal


def quote_pg(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    port: str

    @property
    def label(self) -> str:
        return f"{self.version}/{self.name}"

    @property
    def directory(self) -> str:
        return f"{self.version}-{self.name}"


class PostgreSQL:
    """PostgreSQL as the postgres user (peer authentication), per cluster."""

    engine = "postgresql"
    SEP = "\x1f"

    @staticmethod
    def installed() -> bool:
        return shutil.which("pg_lsclusters") is not None and bool(PostgreSQL.all_clusters())

    @staticmethod
    def all_clusters() -> list[tuple[Cluster, str]]:
        out = run(["pg_lsclusters", "--no-header"], what="pg_lsclusters").stdout.decode()
        clusters = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                clusters.append((Cluster(parts[0], parts[1], parts[2]), parts[3]))
        return clusters

    def clusters(self) -> list[Cluster]:
        found = self.all_clusters()
        down = [c.label for c, status in found if not status.startswith("online")]
        if down:
            raise Failure(f"postgresql: cluster(s) {', '.join(down)} are not running")
        return [cluster for cluster, _state in found]

    def env(self, cluster: Cluster) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "PGCLUSTER": cluster.label,
            "LANG": "C.UTF-8",
            "PGAPPNAME": "hostops-backup",
        }

    def query(self, cluster: Cluster, sql: str, database: str = "postgres") -> list[list[str]]:
        argv = ["psql", "-X", "-q", "-A", "-t", "-F", self.SEP, "-v", "ON_ERROR_STOP=1"]
        argv += ["-d", database, "-c", sql]
        out = run(argv, what="psql", user="postgres", env=self.env(cluster)).stdout
        return [line.split(self.SEP) for line in out.decode("utf-8", "replace").splitlines()]

    def version(self, cluster: Cluster) -> str:
        return self.query(cluster, "SHOW server_version")[0][0]

    def databases(self, cluster: Cluster) -> list[str]:
        rows = self.query(
            cluster,
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
            f"AND datname NOT LIKE {quote_literal(SCRATCH_PREFIX + '%')} ORDER BY 1",
        )
        return [row[0] for row in rows if row and row[0]]

    def exists(self, cluster: Cluster, database: str) -> bool:
        rows = self.query(
            cluster, f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(database)}"
        )
        return rows[0][0] == "1"

    def info(self, cluster: Cluster, database: str) -> dict[str, str]:
        row = self.query(
            cluster,
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, "
            f"datctype FROM pg_database WHERE datname = {quote_literal(database)}",
        )[0]
        return {"owner": row[0], "encoding": row[1], "collate": row[2], "ctype": row[3]}

    def tables(self, cluster: Cluster, database: str) -> list[tuple[str, str]]:
        rows = self.query(
            cluster,
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2",
            database,
        )
        return [(row[0], row[1]) for row in rows if len(row) == 2]

    def checksums(self, cluster: Cluster, database: str) -> dict[str, dict[str, Any]]:
        """Per table: md5 over the rows' md5s in a fixed (C collation) order, and the count."""
        tables = self.tables(cluster, database)
        if not tables:
            return {}
        parts = []
        for schema, table in tables:
            label = quote_literal(f"{schema}.{table}")
            source = f"{quote_pg(schema)}.{quote_pg(table)}"
            parts.append(
                f"SELECT {label}, count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE "
                f"\"C\"), '')) FROM (SELECT md5(t::text) AS h FROM ONLY {source} AS t) AS s"
            )
        rows = self.query(cluster, " UNION ALL ".join(parts), database)
        return {row[0]: {"rows": int(row[1]), "checksum": row[2]} for row in rows if len(row) == 3}

    def dump(self, cluster: Cluster, database: str, target: Path) -> None:
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            # -Z0: restic compresses and deduplicates; a compressed dump defeats both
            run(
                ["pg_dump", "-Fc", "-Z0", "-d", database],
                what=f"pg_dump {database} ({cluster.label})",
                stdout=out,
                user="postgres",
                env=self.env(cluster),
            )
        partial.rename(target)

    def dump_globals(self, cluster: Cluster, target: Path) -> None:
        with open(target, "wb") as out:
            run(
                ["pg_dumpall", "--globals-only"],
                what=f"pg_dumpall --globals-only ({cluster.label})",
                stdout=out,
                user="postgres",
                env=self.env(cluster),
            )

    def create(self, cluster: Cluster, database: str, info: dict[str, str], owner: bool) -> None:
        sql = f"CREATE DATABASE {quote_pg(database)} TEMPLATE template0"
        if info.get("encoding"):
            sql += f" ENCODING {quote_literal(info['encoding'])}"
        if info.get("collate") and info.get("ctype"):
            sql += f" LC_COLLATE {quote_literal(info['collate'])}"
            sql += f" LC_CTYPE {quote_literal(info['ctype'])}"
        if owner and info.get("owner"):
            sql += f" OWNER {quote_pg(info['owner'])}"
        self.query(cluster, sql)

    def drop(self, cluster: Cluster, database: str) -> None:
        self.query(cluster, f"DROP DATABASE IF EXISTS {quote_pg(database)} WITH (FORCE)")

    def load(self, cluster: Cluster, database: str, dump: Path, owners: bool) -> None:
        argv = ["pg_restore", "--exit-on-error", "--single-transaction", "-d", database]
        if not owners:
            argv[1:1] = ["--no-owner", "--no-acl"]
        with open(dump, "rb") as stream:  # read as root, fed to pg_restore as postgres
            run(
                argv,
                what=f"pg_restore into {database}",
                stdin=stream,
                user="postgres",
                env=self.env(cluster),
            )
