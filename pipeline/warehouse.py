"""The only module that talks to DuckDB: connect, migrate, read frames, write in transactions.

Every function opens the warehouse file, does its work and closes it again, so that the file lock
(one writing process, or many reading ones) is held only as long as the work takes.

Analysts read a snapshot, not the warehouse itself: DuckDB lets one process write a file or several
read it, never both, so an analyst holding a connection would make the nightly writer wait and
fail. Every write that finishes a unit of work (loading inputs, a run's outputs or end, a schema
migration) checkpoints, copies the file to `<name>.analyst.duckdb.partial` while it still holds
the write lock, and renames the copy over `<name>.analyst.duckdb` (`analyst_path`). The rename is
atomic: a reader who opened the old snapshot keeps reading that night's file (its inode) until it
reconnects, a new reader gets the new night, and nobody sees a mix. A crash before the rename
leaves the previous snapshot in place; the next write publishes again.

Values that come from users (product ids, dates, file names) always travel as query parameters or
registered frames, never inside the SQL text. Table and column names inside SQL text are constants
of this module.

Schema: `sql/migrations/NNN_name.sql` are applied once each, in order, and recorded in
`schema_migrations`. `sql/views/NAME.sql` hold one select query each (dbt style: a CTE chain ending
in `select * from final`); `migrate` (re)creates the view NAME from it every time it runs.

Timestamps are stored as naive UTC (`timestamp` columns); time-zone-aware input is converted to UTC
first, because DuckDB would otherwise convert it to the machine's local wall time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import faults

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
VIEWS_DIR = SQL_DIR / "views"

_MIGRATION_FILE = re.compile(r"^(\d{3})_(\w+)\.sql$")
_COUNT_COLUMNS = (
    "n_products",
    "n_trained",
    "n_recommendations",
    "n_changes",
    "n_holds",
    "n_data_issues",
    "expected_profit_uplift",
    "stage_seconds",  # JSON text: {"read": s, "train": s, ...}
)
_END_STATUSES = ("completed", "failed")
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


_log = logging.getLogger(__name__)
_ABANDONED = (
    "abandoned: the process running it stopped before it finished (killed or crashed); "
    "found by run {}"
)


class WarehouseError(RuntimeError):
    """A user-facing warehouse problem; the message is one line that says what to do."""


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _migration_files() -> list[tuple[int, str, Path]]:
    """The migration files as (version, name, path), in version order."""
    found = []
    for file in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _MIGRATION_FILE.match(file.name)
        if match:
            found.append((int(match.group(1)), match.group(2), file))
    return found


SCHEMA_VERSION: int = max((version for version, _, _ in _migration_files()), default=0)


# --- connections ---------------------------------------------------------------------------------


def _is_lock_error(exc: duckdb.IOException) -> bool:
    text = str(exc).lower()
    return "lock" in text


def _open(
    path: Path, read_only: bool, lock_timeout_s: float, config: dict[str, Any]
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting with backoff while another process holds a conflicting lock."""
    if read_only and not path.is_file():
        raise WarehouseError(
            f"warehouse {path} not found: run `pricing demo` or `pricing load` first"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            remaining = deadline - time.monotonic()
            if not _is_lock_error(exc):
                raise WarehouseError(f"cannot open warehouse {path}: {_first_line(exc)}") from None
            if remaining <= 0:
                raise WarehouseError(
                    f"warehouse {path} is locked: another process holds it (a nightly run, "
                    f"`pricing load` or a long query); wait for it to finish and retry"
                ) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
        except duckdb.ConnectionException as exc:
            raise WarehouseError(
                f"warehouse {path} is already open in this process with other settings "
                f"({_first_line(exc)}): close that connection first"
            ) from None


@contextmanager
def _connection(
    path: str | Path,
    read_only: bool = False,
    lock_timeout_s: float = 30.0,
    config: dict[str, Any] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    con = _open(Path(path), read_only, lock_timeout_s, dict(config or {}))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def connect(
    path: str | Path, read_only: bool = False, lock_timeout_s: float = 30.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file as a context manager; the connection is closed on exit.

    Args:
        path: the DuckDB file. Its folder is created for writing connections.
        read_only: open for reading only (many processes may read at once).
        lock_timeout_s: how long to keep retrying while another process holds the file.

    Raises:
        WarehouseError: the file is missing (read_only), still locked after lock_timeout_s, or
            not a DuckDB file.
    """
    with _connection(path, read_only, lock_timeout_s) as con:
        yield con


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All statements inside commit together, or none do."""
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()


def analyst_path(path: str | Path) -> Path:
    """The analysts' snapshot of a warehouse: `pricing.duckdb` -> `pricing.analyst.duckdb`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.analyst{path.suffix}")


def reading_path(path: str | Path) -> Path:
    """The file an analyst should open: the snapshot once published, else the warehouse itself."""
    snapshot = analyst_path(path)
    return snapshot if snapshot.is_file() else Path(path)


def _publish_snapshot(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy the committed warehouse to the analysts' snapshot and swap it in atomically.

    `con` is the write connection: holding it keeps other writers out while the file is copied,
    and CHECKPOINT first moves every committed change from the write-ahead log into the file.
    A failure is logged, not raised: the outputs are committed, and the next write publishes again.
    """
    snapshot = analyst_path(path)
    partial = snapshot.with_name(snapshot.name + ".partial")
    try:
        con.execute("checkpoint")
        shutil.copyfile(path, partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())  # the rename must never expose a half-written file
        faults.pause_point("publish")
        os.replace(partial, snapshot)
    except (OSError, duckdb.Error) as exc:
        _log.warning("analysts' snapshot %s not refreshed: %s", snapshot, _first_line(exc))


@contextmanager
def _publishing(path: str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection that republishes the analysts' snapshot when its body succeeds."""
    with connect(path) as con:
        yield con
        _publish_snapshot(con, Path(path))


def _naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert time-zone-aware datetime columns to naive UTC (the warehouse's convention)."""
    aware = [
        name
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    ]
    if not aware:
        return frame
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for name in aware
    )


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, replace: bool = False
) -> None:
    """Insert a frame by column name through DuckDB's Arrow scan (no per-row Python work).

    Columns the frame lacks get the table default (or null, which a not-null column refuses);
    a column the table lacks is an error, so a misspelt name cannot silently lose data.
    """
    view = f"_incoming_{table}"
    con.register(view, _naive_utc(frame))
    try:
        verb = "insert or replace" if replace else "insert"
        con.execute(f"{verb} into {table} by name select * from {view}")
    finally:
        con.unregister(view)


def _now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- schema --------------------------------------------------------------------------------------


def _apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(
        "create table if not exists schema_migrations ("
        "version integer primary key, name varchar, applied_at timestamp)"
    )
    applied = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    newly = []
    for version, name, file in _migration_files():
        if version in applied:
            continue
        with _transaction(con):
            con.execute(file.read_text())
            con.execute(
                "insert into schema_migrations values (?, ?, ?)", [version, name, _now_utc()]
            )
        newly.append(file.stem)
    return newly


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    # The view is named by its file (a constant of the repository, not user input).
    for file in sorted(VIEWS_DIR.glob("*.sql")):
        query = file.read_text().strip().rstrip(";")
        con.execute(f"create or replace view {file.stem} as\n{query}\n")


def _migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        newly = _apply_migrations(con)
        _create_views(con)
    except duckdb.Error as exc:
        raise WarehouseError(f"migrating the warehouse failed: {_first_line(exc)}") from None
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
        newly = _migrate(con)
        if newly or not analyst_path(path).is_file():
            _publish_snapshot(con, Path(path))
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


# --- inputs --------------------------------------------------------------------------------------


def _recreate_empty(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Empty a table by dropping and recreating it from its own stored definition.

    Deleting millions of rows one by one from a primary-key index and inserting the same keys again
    costs several times the insert itself; a fresh table only builds the index once. Views bind
    late, so they survive the drop.
    """
    row = con.execute(
        "select sql from duckdb_tables() where schema_name = 'main' and table_name = ?", [table]
    ).fetchone()
    if row is None:
        raise WarehouseError(
            f"warehouse has no {table} table: move the damaged file away and reload the data"
        )
    con.execute(f"drop table {table}")
    con.execute(row[0])


def write_inputs(
    path: str | Path,
    products: pl.DataFrame,
    sales: pl.DataFrame,
    truth: pl.DataFrame | None = None,
) -> None:
    """Replace the products and sales (and the demo's ground truth) in one transaction.

    Args:
        path: the DuckDB file (created and migrated if needed).
        products: exactly the products table's columns.
        sales: exactly the sales table's columns, one row per (product_id, ds).
        truth: the synthetic world's ground truth (stored as `demo_truth`); None drops any old
            one, which would no longer describe the data.

    Raises:
        WarehouseError: the frames do not fit the tables (nothing is written then).
    """
    with _publishing(path) as con:
        _migrate(con)
        try:
            with _transaction(con):
                _recreate_empty(con, "sales")
                _recreate_empty(con, "products")
                _insert(con, "products", products)
                _insert(con, "sales", sales)
                con.execute("drop table if exists demo_truth")
                if truth is not None:
                    con.register("_incoming_truth", _naive_utc(truth))
                    con.execute("create table demo_truth as select * from _incoming_truth")
                    con.unregister("_incoming_truth")
        except duckdb.Error as exc:
            raise WarehouseError(
                f"writing products and sales to {path} failed, nothing was written: "
                f"{_first_line(exc)}"
            ) from None


def _read(path: str | Path, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
    """Run one read query on a read-only connection and return a polars frame."""
    with connect(path, read_only=True) as con:
        try:
            return con.sql(sql, params=list(params) if params else None).pl()
        except duckdb.CatalogException as exc:
            raise WarehouseError(
                f"warehouse {path} lacks the schema ({_first_line(exc)}): "
                f"run `pricing demo` or `pricing load` first"
            ) from None
        except duckdb.Error as exc:
            raise WarehouseError(f"reading {path} failed: {_first_line(exc)}") from None


def read_products(path: str | Path, active_only: bool = False) -> pl.DataFrame:
    """The product catalogue, sorted by product_id; only `is_active` products if active_only."""
    where = "where is_active" if active_only else ""
    return _read(path, f"select * from products {where} order by product_id")


def read_sales(
    path: str | Path,
    before: date | None = None,
    product_ids: Sequence[str] | None = None,
    after: date | None = None,
) -> pl.DataFrame:
    """Sales history sorted by product_id, ds.

    Args:
        path: the DuckDB file.
        before: keep only days strictly before this date (no leakage from the priced horizon).
        product_ids: keep only these products (an empty sequence gives an empty frame).
        after: keep only days strictly after this date.
    """
    conditions: list[str] = []
    params: list[Any] = []
    for condition, day in (("ds < ?", before), ("ds > ?", after)):
        if day is not None:
            conditions.append(condition)
            params.append(day)
    if product_ids is not None:
        # A semi-join against the unnested list: one hash lookup per row, any list length.
        conditions.append("product_id in (select unnest(?::varchar[]))")
        params.append(list(product_ids))
    where = f"where {' and '.join(conditions)}" if conditions else ""
    return _read(path, f"select * from sales {where} order by product_id, ds", params)


def read_truth(path: str | Path) -> pl.DataFrame | None:
    """The demo's ground truth, or None when the data did not come from `pricing demo`."""
    exists = _read(
        path, "select count(*) as n from information_schema.tables where table_name = 'demo_truth'"
    )
    if exists["n"][0] == 0:
        return None
    return _read(path, "select * from demo_truth")


def read_orphan_sales(path: str | Path) -> pl.DataFrame:
    """Sales rows of products missing from the products table, sorted by product_id, ds."""
    return _read(
        path,
        "select * from sales where product_id not in (select product_id from products) "
        "order by product_id, ds",
    )


def latest_sales_date(path: str | Path, not_after: date | None = None) -> date | None:
    """The last day with sales (ignoring days after `not_after`), or None when there are none."""
    if not_after is None:
        return _read(path, "select max(ds) as ds from sales")["ds"][0]
    return _read(path, "select max(ds) as ds from sales where ds <= ?", [not_after])["ds"][0]


# --- runs and outputs ----------------------------------------------------------------------------


def record_run_start(
    path: str | Path,
    run_id: str,
    flow: str,
    as_of: date | None,
    parameters: dict[str, Any],
    abandon_others: bool = False,
) -> int:
    """Record a run as 'running' (started now, UTC), with its parameters as JSON text.

    Args:
        path: the DuckDB file.
        run_id: a new run id.
        flow: 'nightly' or 'retrain'.
        as_of: the run's effective date.
        parameters: the flow's parameters.
        abandon_others: also mark every other run still 'running' as failed, with a message
            saying it was abandoned. Only for a caller holding the warehouse's run lock
            (pipeline/runlock.py): then no other run can be alive, and a 'running' row is left by
            a process that was killed or crashed.

    Returns:
        How many abandoned runs were marked failed.

    Raises:
        WarehouseError: the run_id is already recorded.
    """
    text = json.dumps(parameters, default=str, sort_keys=True)
    with connect(path) as con:
        _migrate(con)
        try:
            with _transaction(con):
                abandoned = _abandon_running(con, run_id) if abandon_others else 0
                con.execute(
                    "insert into runs (run_id, flow, started_at, status, as_of, parameters) "
                    "values (?, ?, ?, 'running', ?, ?)",
                    [run_id, flow, _now_utc(), as_of, text],
                )
        except duckdb.ConstraintException:
            raise WarehouseError(f"run {run_id} is already recorded: use a new run id") from None
    return abandoned


def _abandon_running(con: duckdb.DuckDBPyConnection, by_run: str) -> int:
    """Mark runs left 'running' by a dead process as failed; returns how many."""
    row = con.execute(
        "update runs set status = 'failed', finished_at = ?, message = ? "
        "where status = 'running' and run_id <> ?",
        [_now_utc(), _ABANDONED.format(by_run), by_run],
    ).fetchone()
    return int(row[0]) if row else 0


def _finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    counts: dict[str, Any] | None,
    message: str | None,
) -> None:
    """Set a run's end status, finished_at (now, UTC), counts and message."""
    if status not in _END_STATUSES:
        raise ValueError(f"run status must be one of {_END_STATUSES}, got {status!r}")
    counts = dict(counts or {})
    unknown = sorted(set(counts) - set(_COUNT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown run counts {unknown}; known: {', '.join(_COUNT_COLUMNS)}")
    # Column names come from the whitelist above; the values travel as parameters.
    assignments = ["status = ?", "finished_at = ?", "message = coalesce(?, message)"]
    assignments += [f"{column} = ?" for column in counts]
    params = [status, _now_utc(), message, *counts.values(), run_id]
    updated = con.execute(
        f"update runs set {', '.join(assignments)} where run_id = ?", params
    ).fetchone()
    if not updated or updated[0] == 0:
        raise WarehouseError(f"run {run_id} was never started: call record_run_start first")


def record_run_end(
    path: str | Path,
    run_id: str,
    status: str,
    counts: dict[str, Any] | None = None,
    message: str | None = None,
) -> None:
    """Mark a run 'completed' or 'failed', with any counts (n_products, ...) and a message."""
    with _publishing(path) as con:
        _finish_run(con, run_id, status, counts, message)


def _replace_earlier_outputs(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: date | None,
    forecasts: pl.DataFrame | None,
    recommendations: pl.DataFrame | None,
) -> None:
    """Delete what an earlier run (or an earlier try of this one) wrote for the same date.

    Only the kinds of output this run writes are replaced: a run without recommendations leaves the
    date's recommendations alone.
    """
    con.execute("delete from data_issues where run_id = ?", [run_id])
    if recommendations is not None:
        # Also the frame's own dates, so a frame whose effective_date differs from as_of still
        # replaces that date's rows (a missing column fails later, at the insert).
        dates = (
            recommendations["effective_date"].unique().to_list()
            if "effective_date" in recommendations.columns
            else []
        )
        con.execute(
            "delete from recommendations where run_id = ? or effective_date = ? "
            "or effective_date in (select unnest(?::date[]))",
            [run_id, as_of, dates],
        )
    if forecasts is not None:
        con.execute(
            "delete from forecasts where run_id = ? or run_id in "
            "(select run_id from runs where as_of = ? and flow = 'nightly')",
            [run_id, as_of],
        )


def write_run_outputs(
    path: str | Path,
    run_id: str,
    as_of: date | None,
    *,
    model_versions: pl.DataFrame | None = None,
    forecasts: pl.DataFrame | None = None,
    recommendations: pl.DataFrame | None = None,
    data_issues: pl.DataFrame | None = None,
    counts: dict[str, Any] | None = None,
    message: str | None = None,
    status: str = "completed",
) -> None:
    """Write a run's outputs and mark it completed, all in one transaction.

    Re-running a date replaces that date's recommendations and nightly forecasts instead of
    duplicating them; model_versions rows replace those with the same (model_version,
    product_id). On any failure nothing is written and the previous night stays readable.

    Args:
        path: the DuckDB file.
        run_id: a run recorded by `record_run_start`.
        as_of: the run's effective date (recommendations.effective_date).
        model_versions: rows for the model_versions table (columns in any order).
        forecasts: rows for the forecasts table.
        recommendations: rows for the recommendations table.
        data_issues: rows for the data_issues table.
        counts: run counts (n_products, n_trained, ...), stored on the run.
        message: a one-line summary stored on the run.
        status: the run's end status; "failed" keeps what a run finished before it failed
            (e.g. the models of the shards that trained) while the run itself is not complete.

    Raises:
        WarehouseError: a frame does not fit its table or the run is unknown (nothing written).
    """
    outputs = {
        "forecasts": forecasts,
        "recommendations": recommendations,
        "data_issues": data_issues,
    }
    with _publishing(path) as con:
        try:
            with _transaction(con):
                _replace_earlier_outputs(con, run_id, as_of, forecasts, recommendations)
                if model_versions is not None:
                    _insert(con, "model_versions", model_versions, replace=True)
                for table, frame in outputs.items():
                    if frame is not None:
                        _insert(con, table, frame)
                faults.pause_point("write")  # crash tests: killed here, nothing may be written
                _finish_run(con, run_id, status, counts, message)
        except duckdb.Error as exc:
            raise WarehouseError(
                f"writing the outputs of run {run_id} failed, nothing was written: "
                f"{_first_line(exc)}"
            ) from None


def read_model_versions(path: str | Path, latest_only: bool = True) -> pl.DataFrame:
    """Model versions sorted by product_id; only the latest per product if latest_only.

    "Latest" is by trained_at (then model_version), as in the `model_quality` view.
    """
    if latest_only:
        # One definition of "latest": the model_quality view's.
        sql = "select * exclude (wape_improvement) from model_quality order by product_id"
    else:
        sql = "select * from model_versions order by product_id, trained_at"
    return _read(path, sql)


def read_recommendations(path: str | Path, latest_only: bool = True) -> pl.DataFrame:
    """Recommendations sorted by product_id.

    Args:
        path: the DuckDB file.
        latest_only: the latest completed nightly run's (the `latest_recommendations` view);
            otherwise every completed run's (the `recommendation_history` view, oldest first).
    """
    if latest_only:
        return _read(path, "select * from latest_recommendations order by product_id")
    return _read(
        path,
        "select * from recommendation_history order by effective_date, finished_at, product_id",
    )


# --- ad-hoc SQL ----------------------------------------------------------------------------------


def _check_read_only(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"pricing sql: {_first_line(exc)}") from None
    if not statements:
        raise WarehouseError("pricing sql needs a query, e.g. select * from latest_recommendations")
    for statement in statements:
        # DuckDB parses IMPORT DATABASE as a PRAGMA, but it creates tables.
        kind = "IMPORT" if _IMPORT.match(statement.query) else statement.type.name
        if statement.type not in _READ_STATEMENTS or kind == "IMPORT":
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
        WarehouseError: a refused statement, a missing warehouse or a SQL error (its first line).
    """
    _check_read_only(sql)
    with _connection(path, read_only=True, config=_LOCKED_DOWN) as con:
        try:
            return con.sql(sql, params=list(params) if params else None).pl()
        except duckdb.Error as exc:
            raise WarehouseError(f"pricing sql: {_first_line(exc)}") from None
