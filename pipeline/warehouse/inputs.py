"""The warehouse's inputs: products, sales and the demo's ground truth, written and read.

Values that come from users (product ids, dates) always travel as query parameters or registered
frames, never inside the SQL text; table and column names inside SQL text are constants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.errors import first_line
from pipeline.warehouse.connection import (
    WarehouseError,
    insert_frame,
    naive_utc,
    publishing,
    read_frame,
    transaction,
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
        except duckdb.Error as exc:
            raise WarehouseError(
                f"writing products and sales to {path} failed, nothing was written: "
                f"{first_line(exc)}"
            ) from None


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
