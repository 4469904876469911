"""The warehouse's inputs: products, sales and the demo's ground truth, written and read.

Values that come from users (product ids, dates) always travel as query parameters or registered
frames, never inside the SQL text; table and column names inside SQL text are constants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline import faults
from pipeline.errors import first_line
from pipeline.warehouse.connection import (
    WarehouseError,
    insert_frame,
    naive_utc,
    publishing,
    read_frame,
    transaction,
    unregister_frame,
)
from pipeline.warehouse.schema import migrate_connection


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
    with publishing(path) as con:
        migrate_connection(con)
        try:
            with transaction(con):
                _recreate_empty(con, "sales")
                _recreate_empty(con, "products")
                insert_frame(con, "products", products)
                insert_frame(con, "sales", sales)
                con.execute("drop table if exists demo_truth")
                if truth is not None:
                    con.register("_incoming_truth", naive_utc(truth))
                    con.execute("create table demo_truth as select * from _incoming_truth")
                    con.unregister("_incoming_truth")
                faults.pause_point("load")  # crash tests: killed here, nothing may be written
        except duckdb.Error as exc:
            raise WarehouseError(
                f"writing products and sales to {path} failed, nothing was written: "
                f"{first_line(exc)}"
            ) from None


# --- incremental loads (`pricing load --mode`) ---------------------------------------------------

LOAD_MODES = ("append", "upsert", "replace")
_KEYS = {"sales": ("product_id", "ds"), "products": ("product_id",)}


@dataclass(frozen=True)
class TableChange:
    """What a load did to one table: rows added, replaced (same key) and dropped (replace only)."""

    added: int = 0
    replaced: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class LoadFrames:
    """The rows a load writes: whole table rows; None leaves that table as it is."""

    products: pl.DataFrame | None = None
    sales: pl.DataFrame | None = None


class InputsView:
    """Reads of the warehouse's inputs for a load's checks, on the load's own connection.

    Used inside the load's transaction, so the checks see exactly the rows the load then changes.
    Ids and keys travel as registered frames or parameters, never as SQL text.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        return self._con.sql(sql, params=params).pl()

    def product_ids(self) -> pl.Series:
        """Every product id in the warehouse."""
        return self._frame("select product_id from products")["product_id"]

    def products(self, ids: pl.Series) -> pl.DataFrame:
        """The warehouse's rows of these products (those it has)."""
        return self._frame(
            "select * from products where product_id in (select unnest(?::varchar[]))",
            [ids.to_list()],
        )

    def sales_history(self, ids: pl.Series) -> pl.DataFrame:
        """Per product of `ids` with sales: first_day, last_day, last_price (see ingest)."""
        return self._frame(
            "select product_id, min(ds) as first_day, max(ds) as last_day, "
            "arg_max(price, ds) as last_price from sales "
            "where product_id in (select unnest(?::varchar[])) group by product_id",
            [ids.to_list()],
        )

    def keys_present(self, table: str, keys: pl.DataFrame) -> pl.Series:
        """For each row of `keys` (the table's key columns), whether the table has that key."""
        columns = _KEYS[table]
        self._con.register("_load_keys", keys.select(columns).with_row_index("_at"))
        try:
            on = " and ".join(f"t.{c} = k.{c}" for c in columns)
            found = self._frame(
                f"select k._at from _load_keys k where exists (select 1 from {table} t where {on})"
            )
        finally:
            unregister_frame(self._con, "_load_keys")
        present = pl.Series("present", [False] * keys.height)
        return present.scatter(found["_at"].cast(pl.Int64), True) if found.height else present

    def first_sale_outside(self, ids: pl.Series) -> dict[str, Any] | None:
        """A sales row (the earliest of the smallest product id) of a product not in `ids`."""
        rows = self._frame(
            "select product_id, ds from sales "
            "where product_id not in (select unnest(?::varchar[])) order by product_id, ds limit 1",
            [ids.to_list()],
        )
        return rows.row(0, named=True) if rows.height else None


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    # fetchall: DuckDB refuses the next statement while a result is only partly fetched.
    return int(con.execute(sql).fetchall()[0][0])


def _table_change(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, mode: str
) -> TableChange:
    """Count what writing `frame` to `table` in `mode` adds, replaces and drops."""
    columns = _KEYS[table]
    on = " and ".join(f"t.{c} = k.{c}" for c in columns)
    con.register("_load_keys", frame.select(columns))
    try:
        replaced = _count(
            con,
            f"select count(*) from _load_keys k where exists (select 1 from {table} t where {on})",
        )
        existing = _count(con, f"select count(*) from {table}")
    finally:
        unregister_frame(con, "_load_keys")
    dropped = existing - replaced if mode == "replace" else 0
    return TableChange(added=frame.height - replaced, replaced=replaced, dropped=dropped)


def _write_table(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, mode: str
) -> TableChange:
    change = _table_change(con, table, frame, mode)
    if mode == "replace":
        _recreate_empty(con, table)
    # A plain insert refuses a key already there: append never overwrites, whatever the caller
    # checked before.
    insert_frame(con, table, frame, replace=mode == "upsert")
    return change


def load_inputs(
    path: str | Path, mode: str, prepare: Callable[[InputsView], LoadFrames]
) -> dict[str, TableChange]:
    """Check and write a load's products and sales in one transaction, in `mode`.

    `prepare` reads what its checks need through the `InputsView` and returns the rows to write
    (or raises, and nothing is written). All of it runs inside one transaction on one write
    connection, so no other writer can change the tables between the checks and the write.

    Modes, per table given: `append` inserts new keys only (a key already there fails the
    load); `upsert` inserts new keys and replaces the rows of keys already there, leaving every
    other row; `replace` empties the table first (and drops any demo ground truth, which no
    longer describes the data).

    Args:
        path: the DuckDB file (created and migrated if needed).
        mode: one of LOAD_MODES.
        prepare: the checks; returns whole table rows.

    Returns:
        The change per table written ("products", "sales").

    Raises:
        WarehouseError: the rows do not fit the tables (nothing is written then).
    """
    if mode not in LOAD_MODES:
        raise ValueError(f"load mode must be one of {', '.join(LOAD_MODES)}, got {mode!r}")
    with publishing(path) as con:
        migrate_connection(con)
        try:
            with transaction(con):
                frames = prepare(InputsView(con))
                changes = {
                    table: _write_table(con, table, frame, mode)
                    for table, frame in (("products", frames.products), ("sales", frames.sales))
                    if frame is not None
                }
                if mode == "replace":
                    con.execute("drop table if exists demo_truth")
                faults.pause_point("load")  # crash tests: killed here, nothing may be written
        except duckdb.Error as exc:
            raise WarehouseError(
                f"loading products and sales into {path} failed, nothing was written: "
                f"{first_line(exc)}"
            ) from None
    return changes


def read_products(path: str | Path, active_only: bool = False) -> pl.DataFrame:
    """The product catalogue, sorted by product_id; only `is_active` products if active_only."""
    where = "where is_active" if active_only else ""
    return read_frame(path, f"select * from products {where} order by product_id")


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
    return read_frame(path, f"select * from sales {where} order by product_id, ds", params)


def read_truth(path: str | Path) -> pl.DataFrame | None:
    """The demo's ground truth, or None when the data did not come from `pricing demo`."""
    exists = read_frame(
        path, "select count(*) as n from information_schema.tables where table_name = 'demo_truth'"
    )
    if exists["n"][0] == 0:
        return None
    return read_frame(path, "select * from demo_truth")


def read_orphan_sales(path: str | Path) -> pl.DataFrame:
    """Sales rows of products missing from the products table, sorted by product_id, ds."""
    return read_frame(
        path,
        "select * from sales where product_id not in (select product_id from products) "
        "order by product_id, ds",
    )


def latest_sales_date(path: str | Path, not_after: date | None = None) -> date | None:
    """The last day with sales (ignoring days after `not_after`), or None when there are none."""
    if not_after is None:
        return read_frame(path, "select max(ds) as ds from sales")["ds"][0]
    return read_frame(path, "select max(ds) as ds from sales where ds <= ?", [not_after])["ds"][0]
