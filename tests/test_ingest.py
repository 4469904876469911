"""Tests of input validation for `pricing load` (pipeline/ingest.py) on tiny hand-made files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipeline import warehouse as wh
from pipeline.config import PricingConfig
from pipeline.ingest import (
    PRODUCT_COLUMNS,
    SALES_COLUMNS,
    InputError,
    read_table_file,
    validate_products,
    validate_sales,
)

SALES_CSV = """product_id,ds,units,price,promo,stockout
B2,2025-01-02,3,1.50,no,0
A1,2025-01-01,2,2.00,yes,false
A1,2025-01-02,0,2.20,,TRUE
"""
PRODUCTS_CSV = """product_id,unit_cost
A1,1.00
B2,0.80
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    file = tmp_path / name
    file.write_text(text)
    return file


def sales_frame(**overrides: list[str | None]) -> pl.DataFrame:
    """Three good sales rows as text (as a CSV reads them), with some columns replaced."""
    columns: dict[str, list[str | None]] = {
        "product_id": ["A1", "A1", "B2"],
        "ds": ["2025-01-01", "2025-01-02", "2025-01-01"],
        "units": ["1", "2", "3"],
        "price": ["2.0", "2.0", "1.5"],
    }
    columns.update(overrides)
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))


def good_sales() -> pl.DataFrame:
    return validate_sales(sales_frame(), "sales.csv")


def products_frame(**overrides: list[str | None]) -> pl.DataFrame:
    columns: dict[str, list[str | None]] = {"product_id": ["A1", "B2"], "unit_cost": ["1", "0.5"]}
    columns.update(overrides)
    return pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))


def test_column_tuples_match_the_warehouse_tables(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    wh.migrate(path)
    sql = (
        "select column_name from information_schema.columns where table_name = ? "
        "order by ordinal_position"
    )
    assert tuple(wh.query_readonly(path, sql, ["products"])["column_name"]) == PRODUCT_COLUMNS
    assert tuple(wh.query_readonly(path, sql, ["sales"])["column_name"]) == SALES_COLUMNS


def test_good_csv_files_load_with_defaults(tmp_path: Path) -> None:
    sales = validate_sales(read_table_file(write(tmp_path, "sales.csv", SALES_CSV)), "sales.csv")
    assert sales.columns == list(SALES_COLUMNS)
    assert sales.schema == pl.Schema(
        {
            "product_id": pl.String,
            "ds": pl.Date,
            "units": pl.Float64,
            "price": pl.Float64,
            "promo": pl.Boolean,
            "stockout": pl.Boolean,
        }
    )
    assert sales["product_id"].to_list() == ["A1", "A1", "B2"]
    assert sales["promo"].to_list() == [True, False, False]  # an empty cell is the default
    assert sales["stockout"].to_list() == [False, True, False]
    raw = read_table_file(write(tmp_path, "products.csv", PRODUCTS_CSV))
    products = validate_products(raw, "products.csv", sales, PricingConfig())
    assert products.columns == list(PRODUCT_COLUMNS)
    a1 = products.row(0, named=True)
    assert a1 == {
        "product_id": "A1",
        "name": "A1",
        "category": "uncategorised",
        "family_id": None,
        "size_rank": None,
        "unit_cost": 1.0,
        "current_price": 2.2,  # the latest price paid
        "min_price": 1.54,  # 0.7 x 2.20, in cents
        "max_price": 3.3,  # 1.5 x 2.20
        "is_active": True,
        "is_kvi": False,
        "launched_on": dt.date(2025, 1, 1),  # the first day with sales
    }
    assert products.schema["size_rank"] == pl.Int32


def test_good_parquet_files_load(tmp_path: Path) -> None:
    typed = pl.DataFrame(
        {
            "product_id": ["A1", "B2"],
            "ds": [dt.date(2025, 1, 1), dt.date(2025, 1, 1)],
            "units": [1, 2],
            "price": [2.0, 1.5],
            "promo": [True, False],
        }
    )
    typed.write_parquet(tmp_path / "sales.parquet")
    sales = validate_sales(read_table_file(tmp_path / "sales.parquet"), "sales.parquet")
    assert sales["units"].to_list() == [1.0, 2.0]
    assert sales["promo"].to_list() == [True, False]
    products = pl.DataFrame(
        {
            "product_id": ["A1", "B2"],
            "unit_cost": [1.0, 0.5],
            "category": ["fruit", None],
            "size_rank": [2, None],
            "current_price": [2.5, None],
            "min_price": [2.0, None],
            "is_kvi": [True, False],
        }
    )
    products.write_parquet(tmp_path / "products.pq")
    raw = read_table_file(tmp_path / "products.pq")
    loaded = validate_products(raw, "products.pq", sales, PricingConfig())
    assert loaded["category"].to_list() == ["fruit", "uncategorised"]
    assert loaded["size_rank"].to_list() == [2, None]
    assert loaded["current_price"].to_list() == [2.5, 1.5]
    assert loaded["min_price"].to_list() == [2.0, 1.05]
    assert loaded["max_price"].to_list() == [3.75, 2.25]
    assert loaded["is_kvi"].to_list() == [True, False]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "sales.xlsx",
            "x",
            "sales.xlsx: check 'file_type' failed: unsupported file type '.xlsx': give a .csv or "
            ".parquet",
        ),
        ("missing.csv", None, "missing.csv: check 'file_exists' failed: file not found at"),
        (
            "broken.parquet",
            "not parquet",
            "broken.parquet: check 'file_readable' failed: cannot be read as PARQUET",
        ),
        ("empty.csv", "", "empty.csv: check 'not_empty' failed: the file is empty"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    if content is not None:
        write(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        read_table_file(tmp_path / name)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"product_id": ["A1", " ", "B2"]},
            "sales.csv row 2: check 'product_id_non_empty' failed: product_id is empty",
        ),
        (
            {"ds": ["2025-01-01", "01/02/2025", "2025-01-01"]},
            "sales.csv row 2: check 'ds_date' failed: ds '01/02/2025' is not a date like "
            "2024-01-31",
        ),
        (
            {"ds": ["2025-01-01", "2025-01-02", None]},
            "sales.csv row 3: check 'ds_date' failed: ds is empty",
        ),
        (
            {"units": ["1", "two", "3"]},
            "sales.csv row 2: check 'units_numeric' failed: units 'two' is not a finite number",
        ),
        (
            {"units": ["1", "2", "inf"]},
            "sales.csv row 3: check 'units_numeric' failed: units 'inf' is not a finite number",
        ),
        (
            {"units": ["", "2", "3"]},
            "sales.csv row 1: check 'units_numeric' failed: units is empty",
        ),
        (
            {"units": ["1", "-1", "3"]},
            "sales.csv row 2: check 'units_non_negative' failed: units -1.0 must be >= 0",
        ),
        (
            {"price": ["2", "2", "NaN"]},
            "sales.csv row 3: check 'price_numeric' failed: price 'NaN' is not a finite number",
        ),
        (
            {"price": ["2", "-2.0", "0"]},
            "sales.csv row 2: check 'price_positive' failed: price -2.0 must be > 0",
        ),
        (
            {"promo": ["yes", "no", "maybe"]},
            "sales.csv row 3: check 'promo_boolean' failed: promo 'maybe' is not one of "
            "true, 1, yes, false, 0, no",
        ),
        (
            {"stockout": ["2", "0", "1"]},
            "sales.csv row 1: check 'stockout_boolean' failed: stockout '2' is not one of "
            "true, 1, yes, false, 0, no",
        ),
        (
            {"ds": ["2025-01-01", "2025-01-02", "2025-01-01"], "product_id": ["A1", "A1", "A1"]},
            "sales.csv row 3: check 'unique_product_day' failed: product_id A1, ds 2025-01-01 "
            "already appears in row 1",
        ),
    ],
)
def test_sales_checks(overrides: dict[str, list[str | None]], expected: str) -> None:
    with pytest.raises(InputError) as info:
        validate_sales(sales_frame(**overrides), "sales.csv")
    assert str(info.value) == expected


def test_sales_columns() -> None:
    with pytest.raises(InputError) as info:
        validate_sales(sales_frame().drop("price"), "sales.csv")
    assert str(info.value) == (
        "sales.csv: check 'required_columns' failed: missing required column 'price' "
        "(required: product_id, ds, units, price)"
    )
    with pytest.raises(
        InputError, match=r"sales\.csv: check 'known_columns' failed: unknown column"
    ):
        validate_sales(sales_frame(store=["1", "1", "2"]), "sales.csv")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"product_id": ["A1", "A1"]},
            "products.csv row 2: check 'unique_product_id' failed: product_id A1 already "
            "appears in row 1",
        ),
        (
            {"unit_cost": ["1", "cheap"]},
            "products.csv row 2: check 'unit_cost_numeric' failed: unit_cost 'cheap' is not a "
            "finite number",
        ),
        (
            {"unit_cost": [None, "1"]},
            "products.csv row 1: check 'unit_cost_numeric' failed: unit_cost is empty",
        ),
        (
            {"unit_cost": ["-1", "1"]},
            "products.csv row 1: check 'unit_cost_non_negative' failed: unit_cost -1.0 must be "
            ">= 0",
        ),
        (
            {"current_price": ["0", None]},
            "products.csv row 1: check 'current_price_positive' failed: current_price 0.0 must "
            "be > 0",
        ),
        (
            {"size_rank": ["1", "1.5"]},
            "products.csv row 2: check 'size_rank_integer' failed: size_rank 1.5 is not a whole "
            "number of at most 2,147,483,647",
        ),
        (
            {"is_kvi": ["no", "perhaps"]},
            "products.csv row 2: check 'is_kvi_boolean' failed: is_kvi 'perhaps' is not one of "
            "true, 1, yes, false, 0, no",
        ),
        (
            {"launched_on": ["2025-13-01", None]},
            "products.csv row 1: check 'launched_on_date' failed: launched_on '2025-13-01' is not "
            "a date like 2024-01-31",
        ),
        (
            {"min_price": ["3", None], "max_price": ["2.5", None]},
            "products.csv row 1: check 'price_bounds' failed: min_price 3.0 is above max_price 2.5",
        ),
        (
            {"unit_cost": ["1", "9"]},
            "products.csv row 2: check 'unit_cost_below_max_price' failed: unit_cost 9.0 is above "
            "max_price 2.25: no allowed price covers the cost",
        ),
    ],
)
def test_product_checks(overrides: dict[str, list[str | None]], expected: str) -> None:
    with pytest.raises(InputError) as info:
        validate_products(
            products_frame(**overrides), "products.csv", good_sales(), PricingConfig()
        )
    assert str(info.value) == expected


def test_products_against_sales() -> None:
    with pytest.raises(InputError) as info:
        validate_products(
            products_frame(product_id=["A1", "C3"]), "products.csv", good_sales(), PricingConfig()
        )
    assert str(info.value) == (
        "products.csv: check 'sales_product_known' failed: the sales row of product 'B2' on "
        "2025-01-01 has no product in products.csv: add the product or remove its sales"
    )
    three = pl.DataFrame({"product_id": ["A1", "B2", "C3"], "unit_cost": ["1", "1", "1"]})
    with pytest.raises(InputError) as info:
        validate_products(three, "products.csv", good_sales(), PricingConfig())
    assert str(info.value) == (
        "products.csv row 3: check 'current_price_known' failed: product 'C3' has no sales and "
        "no current_price: give its current_price"
    )
    priced = three.with_columns(current_price=pl.Series([None, None, "4.00"]))
    loaded = validate_products(priced, "products.csv", good_sales(), PricingConfig())
    assert loaded.row(2, named=True)["launched_on"] is None  # no sales yet
    assert loaded["max_price"].to_list() == [3.0, 2.25, 6.0]


def test_products_columns() -> None:
    with pytest.raises(InputError) as info:
        validate_products(
            products_frame().drop("unit_cost"), "products.csv", good_sales(), PricingConfig()
        )
    assert str(info.value) == (
        "products.csv: check 'required_columns' failed: missing required column 'unit_cost' "
        "(required: product_id, unit_cost)"
    )
