"""Tests of the run-time input checks (pipeline/validate.py) on tiny hand-made frames."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl
import pytest

from pipeline import validate
from pipeline.contract import CHECK_GAP

START = dt.date(2026, 1, 1)
LIMIT = dt.date(2026, 3, 1)
NAN, INF = float("nan"), float("inf")
IDS = ("A", "B", "C")


def make_products() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product_id": list(IDS),
            "unit_cost": [1.0, 1.0, 1.0],
            "current_price": [2.0, 2.0, 2.0],
            "min_price": [1.5, 1.5, 1.5],
            "max_price": [3.0, 3.0, 3.0],
        }
    )


def make_sales(days: int = 10) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "product_id": [p for p in IDS for _ in range(days)],
            "ds": [START + dt.timedelta(days=d) for _ in IDS for d in range(days)],
            "units": [float(d) for _ in IDS for d in range(days)],
            "price": [2.0] * (days * len(IDS)),
            "promo": [False] * (days * len(IDS)),
            "stockout": [False] * (days * len(IDS)),
        }
    )


def set_cell(frame: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """A copy of the frame with one cell replaced (keeps the column's dtype)."""
    values = frame[column].to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def test_clean_input_passes_untouched() -> None:
    checked = validate.check_history(make_products(), make_sales(), limit=LIMIT)
    assert checked.issues.is_empty()
    assert checked.holds.is_empty()
    assert checked.sales.equals(make_sales())
    assert checked.issues.schema == pl.Schema(validate.ISSUE_SCHEMA)


# Row 12 is product B's third day (2026-01-03).
SALES_CASES: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], str]] = {
    "negative price": (lambda f: set_cell(f, 12, "price", -2.0), "price_positive"),
    "zero price": (lambda f: set_cell(f, 12, "price", 0.0), "price_positive"),
    "NaN price": (lambda f: set_cell(f, 12, "price", NAN), "price_missing"),
    "null price": (lambda f: set_cell(f, 12, "price", None), "price_missing"),
    "negative units": (lambda f: set_cell(f, 12, "units", -1.0), "units_non_negative"),
    "NaN units": (lambda f: set_cell(f, 12, "units", NAN), "units_missing"),
    "null units": (lambda f: set_cell(f, 12, "units", None), "units_missing"),
    "infinite units": (lambda f: set_cell(f, 12, "units", INF), "non_finite"),
    "infinite price": (lambda f: set_cell(f, 12, "price", -INF), "non_finite"),
    "future date": (lambda f: set_cell(f, 12, "ds", LIMIT + dt.timedelta(days=1)), "future_date"),
}


@pytest.mark.parametrize("case", list(SALES_CASES))
def test_a_bad_sales_row_is_quarantined_and_its_product_held(case: str) -> None:
    corrupt, check = SALES_CASES[case]
    sales = corrupt(make_sales())
    checked = validate.check_history(make_products(), sales, limit=LIMIT)
    failed = checked.issues.filter(pl.col("check") != CHECK_GAP)
    assert failed.select("product_id", "ds", "check").rows() == [("B", sales["ds"][12], check)]
    assert failed["detail"][0]
    assert checked.sales.height == sales.height - 1
    assert not checked.sales.filter(
        pl.col("product_id") == "B", pl.col("ds") == sales["ds"][12]
    ).height
    assert checked.holds["product_id"].to_list() == ["B"]
    assert checked.holds["hold_reason"][0] == f"data issue: {check} (1 row); see data_issues"


def test_duplicate_days_are_all_dropped_and_reported() -> None:
    sales = pl.concat([make_sales(), make_sales().slice(3, 1).with_columns(units=pl.lit(99.0))])
    checked = validate.check_history(make_products(), sales, limit=LIMIT)
    assert checked.issues["check"].to_list() == ["unique_product_day"] * 2
    assert checked.issues["detail"][0] == "2 rows for this product and day: all dropped"
    assert checked.sales.height == make_sales().height - 1
    assert checked.holds["hold_reason"].to_list() == [
        "data issue: unique_product_day (2 rows); see data_issues"
    ]


def test_gaps_are_recorded_without_a_hold() -> None:
    missing = [START + dt.timedelta(days=d) for d in (3, 4, 7)]
    sales = make_sales().filter(~((pl.col("product_id") == "C") & pl.col("ds").is_in(missing)))
    checked = validate.check_history(make_products(), sales, limit=LIMIT)
    assert checked.issues.select("product_id", "ds", "check").rows() == [
        ("C", missing[0], "gap"),
        ("C", missing[2], "gap"),
    ]
    assert checked.issues["detail"][0] == (
        "2 days without a sales row (2026-01-04 to 2026-01-05): treated as unobserved"
    )
    assert checked.holds.is_empty()
    assert checked.sales.equals(sales)


PRODUCT_CASES = {
    "min above max": (lambda f: set_cell(f, 1, "min_price", 3.5), "price_bounds"),
    "cost above max": (lambda f: set_cell(f, 1, "unit_cost", 3.5), "unit_cost_below_max_price"),
    "NaN cost": (lambda f: set_cell(f, 1, "unit_cost", NAN), "non_finite"),
    "infinite max": (lambda f: set_cell(f, 1, "max_price", INF), "non_finite"),
    "negative cost": (lambda f: set_cell(f, 1, "unit_cost", -1.0), "unit_cost_non_negative"),
    "zero current price": (
        lambda f: set_cell(f, 1, "current_price", 0.0),
        "current_price_positive",
    ),
}


@pytest.mark.parametrize("case", list(PRODUCT_CASES))
def test_a_bad_product_is_held(case: str) -> None:
    corrupt, check = PRODUCT_CASES[case]
    checked = validate.check_history(corrupt(make_products()), make_sales(), limit=LIMIT)
    assert checked.issues.select("product_id", "ds", "check").rows() == [("B", None, check)]
    assert checked.sales.equals(make_sales())  # a product's own values never drop its sales
    assert checked.holds["product_id"].to_list() == ["B"]


def test_rows_outside_the_history_are_checked_too() -> None:
    later = (
        make_sales(2)
        .filter(pl.col("product_id") == "A")
        .with_columns(ds=pl.lit(LIMIT + dt.timedelta(days=400)))
    )
    orphans = make_sales(3).filter(pl.col("product_id") == "A").with_columns(product_id=pl.lit("Z"))
    checked = validate.check_history(make_products(), make_sales(), later, orphans, LIMIT)
    counts = dict(checked.issues.group_by("check").len().iter_rows())
    assert counts == {"future_date": 2, "sales_product_known": 3}
    assert set(checked.issues.filter(pl.col("check") == "sales_product_known")["product_id"]) == {
        "Z"
    }
    # Only priced products are held: Z is not one.
    assert checked.holds.rows() == [("A", "data issue: future_date (2 rows); see data_issues")]
    assert checked.sales.equals(make_sales())


def test_several_checks_on_one_product_share_one_hold() -> None:
    sales = set_cell(set_cell(make_sales(), 0, "units", -1.0), 1, "price", 0.0)
    products = set_cell(make_products(), 0, "min_price", 9.0)
    checked = validate.check_history(products, sales, limit=LIMIT)
    assert checked.holds.rows() == [
        (
            "A",
            "data issue: price_bounds (1 row), price_positive (1 row), units_non_negative (1 row); "
            "see data_issues",
        )
    ]


def test_hold_puts_the_data_issue_first_and_keeps_order_and_other_reasons() -> None:
    table = pl.DataFrame(
        {"product_id": ["C", "A", "B"], "hold_reason": ["cold start", "cold start", None]}
    )
    holds = pl.DataFrame(
        {"product_id": ["A", "B"], "hold_reason": ["data issue: x", "data issue: y"]}
    )
    held = validate.hold(table, holds)
    assert held["product_id"].to_list() == ["C", "A", "B"]
    assert held["hold_reason"].to_list() == [
        "cold start",
        "data issue: x; cold start",
        "data issue: y",
    ]


def test_latest_plausible_day_allows_one_day_of_time_zones() -> None:
    assert validate.latest_plausible_day(dt.date(2026, 2, 28)) == dt.date(2026, 3, 1)
    today = dt.datetime.now(dt.UTC).date()
    assert validate.latest_plausible_day() == today + dt.timedelta(days=1)
