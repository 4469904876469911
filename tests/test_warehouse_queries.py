"""Read-only queries (pipeline/warehouse/queries.py): an analyst's SQL and the named queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from warehouse_rows import AS_OF, load, nightly, warehouse_file

from pipeline import cli
from pipeline import warehouse as wh
from pipeline.errors import UserError


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return warehouse_file(tmp_path)


@pytest.fixture
def loaded(path: Path) -> Path:
    return load(path)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("insert into runs (run_id) values ('x')", "INSERT"),
        ("drop table sales", "DROP"),
        ("copy sales to 'stolen.csv'", "COPY"),
        ("attach 'other.duckdb' as other", "ATTACH"),
        ("select 1; delete from sales", "DELETE"),
        ("set threads = 1", "SET"),
        ("import database 'dump'", "IMPORT"),  # parsed as a PRAGMA, but it creates tables
    ],
)
def test_query_readonly_refuses_writes(loaded: Path, sql: str, kind: str) -> None:
    with pytest.raises(wh.WarehouseError) as info:
        wh.query_readonly(loaded, sql)
    message = str(info.value)
    assert message == (
        f"pricing sql runs read-only queries (SELECT/WITH/...); refused a {kind} statement"
    )
    assert wh.read_sales(loaded).height == 30


def test_query_readonly_answers_reads_and_blocks_files(loaded: Path, tmp_path: Path) -> None:
    answer = wh.query_readonly(
        loaded,
        "with s as (select * from sales) select product_id, sum(units) as units from s "
        "group by product_id order by product_id",
    )
    assert answer["units"].to_list() == [45.0, 45.0, 45.0]
    assert wh.query_readonly(loaded, "describe sales").height == 6
    assert wh.query_readonly(loaded, "pragma table_info('products')").height == 12
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(wh.WarehouseError, match=r"^pricing sql: .*disabled"):
        wh.query_readonly(loaded, "select * from read_csv(?)", [str(secret)])
    with pytest.raises(wh.WarehouseError, match=r"^pricing sql: .*no_such_table"):
        wh.query_readonly(loaded, "select * from no_such_table")


# Each named query in sql/queries/ with the parameters it takes; a new query file is added here.
NAMED = {
    "product_latest_forecast": ["A1"],
    "product_sales_history": ["A1"],
    "report_backtest": None,
    "report_recommendations": None,
}


def test_every_named_query_binds_and_reads(loaded: Path) -> None:
    assert wh.query_names() == sorted(NAMED)
    nightly(loaded, "night-1", AS_OF, 2.19)
    for name, params in NAMED.items():
        wh.run_named_query(loaded, name, params)  # binds against the schema
    history = wh.run_named_query(loaded, "product_sales_history", ["A1"])
    assert history.columns == ["ds", "units", "price", "stockout"]
    assert history.height == 10 and history["ds"].is_sorted()
    forecast = wh.run_named_query(loaded, "product_latest_forecast", ["A1"])
    assert forecast["units_mean"].to_list() == [3.0, 4.0]
    recs = wh.run_named_query(loaded, "report_recommendations")
    assert recs["product_id"].to_list() == ["A1", "B2"]
    assert recs["max_price"].to_list() == [3.0, 1.5]
    with pytest.raises(ValueError, match="no query 'nope' in sql/queries"):
        wh.run_named_query(loaded, "nope")


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("selec 1", "Parser Error"),
        ("select no_such_column from sales", "Binder Error"),
        ("select * from no_such_table", "Catalog Error"),
        ("select 1::union(a int, b varchar) as u", "a type polars cannot read"),
    ],
)
def test_a_bad_analyst_query_is_one_line_for_the_cli(loaded: Path, sql: str, error: str) -> None:
    with pytest.raises(wh.WarehouseError) as info:
        wh.query_readonly(loaded, sql)
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert message.startswith("pricing sql: ") and error in message and "\n" not in message
    result = CliRunner().invoke(cli.app, ["sql", sql, "--warehouse", str(loaded)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
