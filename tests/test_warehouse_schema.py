"""The warehouse schema (pipeline/warehouse/schema.py): migrations, views, upgrades."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from warehouse_rows import (
    AS_OF,
    TABLES,
    VIEWS,
    make_forecasts,
    make_model_versions,
    make_products,
    make_recommendations,
    make_sales,
    warehouse_file,
)

from pipeline import warehouse as wh
from pipeline.warehouse.schema import apply_migrations

# Every column of every table and view, as DuckDB describes it.
_COLUMNS = """
select table_name, column_name, ordinal_position, data_type, is_nullable, column_default
from information_schema.columns order by table_name, ordinal_position
"""
_CONSTRAINTS = """
select table_name, constraint_type, constraint_column_names::varchar as names
from duckdb_constraints() order by all
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return warehouse_file(tmp_path)


def test_migrate_is_idempotent_and_creates_tables_and_views(path: Path) -> None:
    assert wh.schema_version(path) == 0
    first = wh.migrate(path)
    assert first[0] == "001_core_tables"
    assert wh.migrate(path) == []
    assert wh.schema_version(path) == wh.SCHEMA_VERSION >= 1
    objects = wh.query_readonly(
        path, "select table_name, table_type from information_schema.tables"
    )
    tables = set(objects.filter(pl.col("table_type") == "BASE TABLE")["table_name"])
    views = set(objects.filter(pl.col("table_type") == "VIEW")["table_name"])
    assert tables >= TABLES
    assert views >= VIEWS
    for view in VIEWS:  # every view binds against the schema
        assert wh.query_readonly(path, f"select * from {view}").height == 0


def test_reading_path_falls_back_to_the_warehouse(path: Path) -> None:
    assert wh.reading_path(path) == path
    wh.migrate(path)  # a new warehouse publishes its first snapshot
    assert wh.reading_path(path) == wh.analyst_path(path)


def _write_first_schema_rows(path: Path) -> dict[str, list[tuple]]:
    """A warehouse as the first release left it: schema 001 only, a night of rows in it."""
    first, *_ = wh.migration_files()
    frames = {
        "products": make_products(),
        "sales": make_sales(),
        "model_versions": make_model_versions("v1", dt.datetime(2025, 2, 1, 3, 0), 0.3),
        "forecasts": make_forecasts("night-1", AS_OF),
        "recommendations": make_recommendations("night-1", AS_OF, 2.19),
        "data_issues": pl.DataFrame(
            {"run_id": ["night-1"], "product_id": ["A1"], "ds": [AS_OF], "check": ["units"]}
        ),
    }
    with wh.connect(path) as con:
        assert apply_migrations(con, [first]) == ["001_core_tables"]
        for table, frame in frames.items():
            con.register("incoming", frame)
            con.execute(f"insert into {table} by name select * from incoming")
            con.unregister("incoming")
        con.execute(
            "insert into runs (run_id, flow, started_at, finished_at, status, as_of, n_products) "
            "values ('night-1', 'nightly', ?, ?, 'completed', ?, 2)",
            [dt.datetime(2025, 3, 1, 2, 0), dt.datetime(2025, 3, 1, 2, 5), AS_OF],
        )
        return {
            table: con.execute(f"select * from {table} order by all").fetchall()
            for table in TABLES - {"schema_migrations"}
        }


def test_a_warehouse_of_the_first_schema_upgrades_through_every_migration(
    tmp_path: Path,
) -> None:
    old, fresh = tmp_path / "old.duckdb", tmp_path / "fresh.duckdb"
    first, *later = wh.migration_files()
    assert later, "no later migration to upgrade through"
    rows = _write_first_schema_rows(old)
    assert wh.schema_version(old) == first[0]

    assert wh.migrate(old) == [f"{version:03d}_{name}" for version, name, _ in later]
    wh.migrate(fresh)
    assert wh.schema_version(old) == wh.schema_version(fresh) == wh.SCHEMA_VERSION
    # The same tables, views, columns (names, order, types, defaults) and keys as a new warehouse.
    assert wh.query_readonly(old, _COLUMNS).equals(wh.query_readonly(fresh, _COLUMNS))
    assert wh.query_readonly(old, _CONSTRAINTS).equals(wh.query_readonly(fresh, _CONSTRAINTS))
    migrations = "select version, name from schema_migrations order by version"
    assert wh.query_readonly(old, migrations).equals(wh.query_readonly(fresh, migrations))

    # Every row kept with the first schema's values (later migrations append their columns, so
    # those come first); the columns added later are null.
    with wh.connect(old, read_only=True) as con:
        for table, before in rows.items():
            columns = [d[0] for d in con.execute(f"select * from {table} limit 0").description]
            selected = ", ".join(f'"{name}"' for name in columns[: len(before[0])])
            kept = con.execute(f"select {selected} from {table} order by all").fetchall()
            assert kept == before, table
    for table, added in (
        ("model_versions", ("backtest_mase", "baseline_mase", "dispersion")),
        ("forecasts", ("units_p50",)),
        ("runs", ("stage_seconds",)),
    ):
        nulls = wh.query_readonly(old, f"select {', '.join(added)} from {table}")
        assert nulls.null_count().row(0) == (len(rows[table]),) * len(added), table
    # The views bind against the upgraded tables.
    assert wh.read_recommendations(old)["run_id"].to_list() == ["night-1", "night-1"]
    assert wh.read_model_versions(old)["model_version"].to_list() == ["v1", "v1"]
