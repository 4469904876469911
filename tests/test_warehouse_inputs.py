"""The warehouse's inputs (pipeline/warehouse/inputs.py): products, sales, the demo's truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from warehouse_rows import AS_OF, QUOTED, load, make_products, make_sales, warehouse_file

from pipeline import warehouse as wh


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return warehouse_file(tmp_path)


@pytest.fixture
def loaded(path: Path) -> Path:
    return load(path)


def test_inputs_round_trip_with_dtypes(loaded: Path) -> None:
    products, sales = make_products(), make_sales()
    assert wh.read_products(loaded).equals(products.sort("product_id"))
    assert wh.read_sales(loaded).equals(sales.sort("product_id", "ds"))
    assert wh.read_products(loaded, active_only=True)["product_id"].to_list() == ["A1", "B2"]
    assert wh.latest_sales_date(loaded) == dt.date(2025, 2, 10)
    assert wh.read_truth(loaded) is None


def test_write_inputs_replaces_and_truth_follows_the_data(loaded: Path) -> None:
    truth = pl.DataFrame({"product_id": ["A1"], "elasticity": [-1.2]})
    wh.write_inputs(loaded, make_products(), make_sales(days=4), truth)
    assert wh.read_sales(loaded).height == 12
    stored = wh.read_truth(loaded)
    assert stored is not None and stored.equals(truth)
    wh.write_inputs(loaded, make_products(), make_sales(days=4))
    assert wh.read_truth(loaded) is None


def test_bad_inputs_write_nothing(loaded: Path) -> None:
    duplicated = pl.concat([make_sales(), make_sales().head(1)])
    with pytest.raises(wh.WarehouseError, match="nothing was written"):
        wh.write_inputs(loaded, make_products(), duplicated)
    assert wh.read_sales(loaded).height == 30


def test_read_sales_filters(loaded: Path) -> None:
    before = dt.date(2025, 2, 4)
    sales = wh.read_sales(loaded, before=before, product_ids=["B2", QUOTED])
    assert sales["product_id"].unique().sort().to_list() == ["B2", QUOTED]
    assert sales["ds"].max() == dt.date(2025, 2, 3)
    assert sales.height == 6
    assert wh.read_sales(loaded, product_ids=[]).height == 0
    assert wh.read_sales(loaded, product_ids=["nope"]).columns == list(make_sales().columns)


def test_quoted_product_id_travels_as_a_parameter(loaded: Path) -> None:
    sales = wh.read_sales(loaded, product_ids=[QUOTED])
    assert sales.height == 10
    answer = wh.query_readonly(
        loaded, "select count(*) as n from sales where product_id = ?", [QUOTED]
    )
    assert answer["n"][0] == 10


def test_reads_for_the_run_time_checks(loaded: Path) -> None:
    future = dt.date(2099, 1, 1)
    with wh.connect(loaded) as con:  # as a user's own ETL could write them
        con.execute("insert into sales values ('GHOST', ?, 1, 1.0, false, false)", [AS_OF])
        con.execute("insert into sales values ('A1', ?, 1, 1.0, false, false)", [future])
    orphans = wh.read_orphan_sales(loaded)
    assert orphans.select("product_id", "ds").rows() == [("GHOST", AS_OF)]
    assert wh.read_sales(loaded, after=AS_OF).select("product_id", "ds").rows() == [("A1", future)]
    assert wh.latest_sales_date(loaded) == future
    assert wh.latest_sales_date(loaded, not_after=dt.date(2030, 1, 1)) == AS_OF
