"""Read-only queries: an analyst's ad-hoc SQL and the named query files other modules run.

Both run on a connection that is read-only and locked down: no files outside the warehouse, no
extensions, no settings changes; every statement must be a read. Named queries live in
`sql/queries/NAME.sql` (one select each), so no SQL text sits outside `sql/` and this package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import first_line
from pipeline.warehouse.connection import WarehouseError, open_connection
from pipeline.warehouse.sqlfiles import QUERIES_DIR, sql_files, statement, stem

# Statement types `query_readonly` lets through; anything else could write or reach outside.
_READ_STATEMENTS = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
}
_IMPORT = re.compile(r"\s*(import\b|pragma\s+import_database\b)", re.IGNORECASE)
# The analysts' connection: no files outside the warehouse, no extensions, no settings changes.
_LOCKED_DOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
    "lock_configuration": True,
}


def _check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"pricing sql: {first_line(exc)}") from None
    if not statements:
        raise WarehouseError("pricing sql needs a query, e.g. select * from latest_recommendations")
    for parsed in statements:
        # DuckDB parses IMPORT DATABASE as a PRAGMA, but it creates tables.
        kind = "IMPORT" if _IMPORT.match(parsed.query) else parsed.type.name
        if parsed.type not in _READ_STATEMENTS or kind == "IMPORT":
            raise WarehouseError(
                f"pricing sql runs read-only queries (SELECT/WITH/...); refused a {kind} statement"
            )


def query_readonly(path: str | Path, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run an analyst's read query, refusing anything that could write or reach other files.

    Every statement must be a read (SELECT, WITH, FROM, DESCRIBE, SHOW, EXPLAIN or PRAGMA); the
    connection is read-only, cannot touch files outside the warehouse, load extensions or change
    settings.

    Args:
        path: the DuckDB file.
        sql: one or more statements; the last one's result is returned.
        params: values for `?` or `$1` placeholders.

    Raises:
        WarehouseError: a refused statement, a missing warehouse, a SQL error (its first line:
            a parser, binder or catalog error is the analyst's to fix) or a result column polars
            cannot hold.
    """
    _check_read_only(sql)
    with open_connection(path, read_only=True, config=_LOCKED_DOWN) as con:
        try:
            return con.sql(sql, params=list(params) if params else None).pl()
        except duckdb.Error as exc:
            raise WarehouseError(f"pricing sql: {first_line(exc)}") from None
        except pl.exceptions.PolarsError as exc:
            raise WarehouseError(
                f"pricing sql: a result column has a type polars cannot read "
                f"({first_line(exc)}): cast it, e.g. to varchar"
            ) from None


def query_names() -> list[str]:
    """The named queries in `sql/queries/`, sorted."""
    return [stem(file) for file in sql_files(QUERIES_DIR)]


def named_query(name: str) -> str:
    """The SQL text of `sql/queries/NAME.sql`.

    Raises:
        ValueError: no query has that name (a bug in the caller: names are constants).
    """
    if name not in query_names():
        raise ValueError(f"no query {name!r} in sql/queries; known: {', '.join(query_names())}")
    return statement(QUERIES_DIR / f"{name}.sql")


def run_named_query(
    path: str | Path, name: str, params: Sequence[Any] | None = None
) -> pl.DataFrame:
    """Run the read query `sql/queries/NAME.sql` as `query_readonly` runs an analyst's query.

    Args:
        path: the DuckDB file (usually the analysts' snapshot, `reading_path`).
        name: the query file's name without `.sql`, e.g. "report_backtest".
        params: values for the query's `?` placeholders.

    Raises:
        WarehouseError: as `query_readonly`.
    """
    return query_readonly(path, named_query(name), params)
