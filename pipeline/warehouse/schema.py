"""The warehouse schema: versioned migrations, the analysts' views, the schema version.

`sql/migrations/NNN_name.sql` are applied once each, in order, and recorded in
`schema_migrations`. `sql/views/NAME.sql` hold one select query each (dbt style: a CTE chain ending
in `select * from final`); `migrate` (re)creates the view NAME from it every time it runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path

import duckdb

from pipeline.errors import first_line
from pipeline.warehouse.connection import (
    WarehouseError,
    analyst_path,
    connect,
    now_utc,
    publish_snapshot,
    transaction,
)
from pipeline.warehouse.sqlfiles import MIGRATIONS_DIR, VIEWS_DIR, sql_files, statement, stem

_MIGRATION_FILE = re.compile(r"^(\d{3})_(\w+)\.sql$")


def migration_files() -> list[tuple[int, str, Traversable]]:
    """The migration files as (version, name, file), in version order."""
    found = []
    for file in sql_files(MIGRATIONS_DIR):
        match = _MIGRATION_FILE.match(file.name)
        if match:
            found.append((int(match.group(1)), match.group(2), file))
    return found


SCHEMA_VERSION: int = max((version for version, _, _ in migration_files()), default=0)


def apply_migrations(
    con: duckdb.DuckDBPyConnection,
    migrations: Sequence[tuple[int, str, Traversable]] | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`, each in its own transaction.

    Args:
        con: a write connection.
        migrations: (version, name, file) in version order; default every migration file (a
            test passes the first ones only, to build a warehouse as an older release left it).

    Returns:
        The migrations newly applied, as file stems.
    """
    con.execute(
        "create table if not exists schema_migrations ("
        "version integer primary key, name varchar, applied_at timestamp)"
    )
    applied = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    newly = []
    for version, name, file in migration_files() if migrations is None else migrations:
        if version in applied:
            continue
        with transaction(con):
            con.execute(file.read_text(encoding="utf-8"))
            con.execute(
                "insert into schema_migrations values (?, ?, ?)", [version, name, now_utc()]
            )
        newly.append(stem(file))
    return newly


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    # The view is named by its file (a constant of the repository, not user input).
    for file in sql_files(VIEWS_DIR):
        con.execute(f"create or replace view {stem(file)} as\n{statement(file)}\n")


def migrate_connection(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations and (re)create the views on an open write connection.

    Raises:
        WarehouseError: a migration or view failed (its first line).
    """
    try:
        newly = apply_migrations(con)
        _create_views(con)
    except duckdb.Error as exc:
        raise WarehouseError(f"migrating the warehouse failed: {first_line(exc)}") from None
    return newly


def migrate(path: str | Path) -> list[str]:
    """Bring the warehouse schema up to date; safe to run any number of times.

    Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction and
    in version order, then creates or replaces every view in `sql/views/`. The analysts' snapshot
    is published when the schema changed or there is none yet.

    Args:
        path: the DuckDB file (created if missing).

    Returns:
        The migrations newly applied, as file stems (e.g. ["001_core_tables"]).
    """
    with connect(path) as con:
        newly = migrate_connection(con)
        if newly or not analyst_path(path).is_file():
            publish_snapshot(con, Path(path))
    return newly


def schema_version(path: str | Path) -> int:
    """The highest migration applied to the warehouse; 0 for a missing or empty file."""
    if not Path(path).is_file():
        return 0
    with connect(path, read_only=True) as con:
        tables = con.execute(
            "select count(*) from information_schema.tables where table_name = 'schema_migrations'"
        ).fetchone()
        if not tables or tables[0] == 0:
            return 0
        row = con.execute("select coalesce(max(version), 0) from schema_migrations").fetchone()
    return int(row[0]) if row else 0
