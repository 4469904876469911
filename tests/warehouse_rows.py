"""Tiny hand-made rows for the warehouse tests (tests/test_warehouse_*.py), not a test module."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipeline import warehouse as wh

AS_OF = dt.date(2025, 3, 1)
QUOTED = "o'brien's \"best\"; drop table sales; --"
TABLES = {
    "schema_migrations",
    "products",
    "sales",
    "runs",
    "model_versions",
    "forecasts",
    "recommendations",
    "data_issues",
}
VIEWS = {"latest_recommendations", "recommendation_history", "model_quality", "run_summary"}


def warehouse_file(folder: Path) -> Path:
    """Where a test's warehouse goes (its folder does not exist yet)."""
    return folder / "wh" / "pricing.duckdb"


def make_products() -> pl.DataFrame:
    ids = ["A1", "B2", QUOTED]
    return pl.DataFrame(
        {
            "product_id": ids,
            "name": ["apple", "bread", "quoted"],
            "category": ["fruit", "bakery", "odd"],
            "family_id": ["f1", None, None],
            "size_rank": pl.Series([1, None, None], dtype=pl.Int32),
            "unit_cost": [1.0, 0.5, 2.0],
            "current_price": [2.0, 1.0, 4.0],
            "min_price": [1.5, 0.7, 3.0],
            "max_price": [3.0, 1.5, 6.0],
            "is_active": [True, True, False],
            "is_kvi": [False, True, False],
            "launched_on": [dt.date(2025, 1, 1)] * 3,
        }
    )


def make_sales(days: int = 10) -> pl.DataFrame:
    start = dt.date(2025, 2, 1)
    rows = [
        {
            "product_id": product_id,
            "ds": start + dt.timedelta(days=d),
            "units": float(d),
            "price": 2.0,
            "promo": d % 3 == 0,
            "stockout": d == 5,
        }
        for product_id in ("A1", "B2", QUOTED)
        for d in range(days)
    ]
    return pl.DataFrame(rows)


def make_recommendations(run_id: str, as_of: dt.date, price: float) -> pl.DataFrame:
    # Columns deliberately in another order than the table, and only a subset of the nullable ones.
    return pl.DataFrame(
        {
            "reason": ["model says so", "kept"],
            "product_id": ["A1", "B2"],
            "run_id": [run_id, run_id],
            "effective_date": [as_of, as_of],
            "current_price": [2.0, 1.0],
            "recommended_price": [price, 1.0],
            "action": ["increase", "keep"],
            "expected_profit": [10.0, 5.0],
            "binding_rule": ["none", "none"],
        }
    )


def make_forecasts(run_id: str, as_of: dt.date) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_id": [run_id] * 2,
            "product_id": ["A1", "A1"],
            "ds": [as_of, as_of + dt.timedelta(days=1)],
            "price": [2.19, 2.19],
            "units_mean": [3.0, 4.0],
            "units_p10": [1.0, 2.0],
            "units_p90": [5.0, 6.0],
        }
    )


def make_model_versions(version: str, trained_at: dt.datetime, wape: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model_version": [version, version],
            "product_id": ["A1", "B2"],
            "trained_at": [trained_at, trained_at],
            "backtest_wape": [wape, 0.5],
            "baseline_wape": [0.4, 0.4],
            "elasticity": [-1.5, -0.8],
            "gate_passed": [True, False],
            "status": ["trained", "gate_failed"],
        }
    )


def load(path: Path) -> Path:
    """Write the hand-made products and 10 days of sales; return the path."""
    wh.write_inputs(path, make_products(), make_sales())
    return path


def nightly(path: Path, run_id: str, as_of: dt.date, price: float, **outputs: object) -> None:
    wh.record_run_start(path, run_id, "nightly", as_of, {"as_of": as_of, "shard": 1})
    wh.write_run_outputs(
        path,
        run_id,
        as_of,
        forecasts=make_forecasts(run_id, as_of),
        recommendations=make_recommendations(run_id, as_of, price),
        counts={"n_products": 2, "n_recommendations": 2, "expected_profit_uplift": 1.5},
        message="ok",
        **outputs,  # type: ignore[arg-type]
    )
