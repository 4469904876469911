"""The catalogue: a night's one read from the warehouse and its one write back.

`read_night` gathers a `NightInputs` (products, their history, the latest model versions and the
rows the data checks need); `write_night` stores a `NightOutputs` and ends the run, in one
transaction. Both go through `pipeline.warehouse`, the only module that talks to DuckDB.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from pipeline import validate, warehouse
from pipeline.night import NightInputs, NightOutputs
from pipeline.warehouse.connection import read_frame


def read_night(
    path: str | Path, as_of: dt.date | None, product_ids: list[str] | None
) -> NightInputs:
    """Products, their sales before `as_of`, model versions, and the rows the checks need.

    Args:
        path: the DuckDB file (already migrated).
        as_of: the first priced day (default: the day after the latest plausible sale).
        product_ids: only these products (default: every active product).

    Raises:
        warehouse.WarehouseError: the warehouse has no sales.
    """
    plausible_until = validate.latest_plausible_day()
    # A sale dated in the future (a bad row) must not move the priced horizon there.
    latest = warehouse.latest_sales_date(path, not_after=plausible_until)
    if latest is None:
        raise warehouse.WarehouseError(
            f"warehouse {path} has no sales: run `pricing demo` or `pricing load` first"
        )
    as_of = as_of or latest + dt.timedelta(days=1)
    products = warehouse.read_products(path, active_only=True)
    if product_ids is not None:
        products = products.filter(pl.col("product_id").is_in(product_ids))
    ids = products["product_id"].to_list()
    return NightInputs(
        products=products,
        sales=warehouse.read_sales(path, before=as_of, product_ids=ids),
        versions=warehouse.read_model_versions(path, latest_only=True),
        as_of=as_of,
        later_sales=warehouse.read_sales(
            path, after=max(plausible_until, as_of - dt.timedelta(days=1))
        ),
        orphan_sales=warehouse.read_orphan_sales(path),
        plausible_until=plausible_until,
        price_tests=read_price_tests(path, as_of),
    )


def read_price_tests(path: str | Path, as_of: dt.date) -> pl.DataFrame:
    """Each product's latest price-test row before `as_of` (`pricing.explore.STATE_COLUMNS`)."""
    sql = (
        "select product_id, test_status, test_started, test_base_price, test_direction, "
        "test_attempt, test_reach_width, effective_date "
        "from recommendations inner join runs using (run_id) "
        "where runs.status = 'completed' and test_status is not null and effective_date < ? "
        "qualify row_number() over (partition by product_id order by effective_date desc) = 1 "
        "order by product_id"
    )
    return read_frame(path, sql, [as_of])


def write_night(
    path: str | Path, run_id: str, as_of: dt.date, outputs: NightOutputs, stages: dict[str, float]
) -> None:
    """Write the run's outputs and end it with its status, counts and stage times, atomically."""
    counts = {**outputs.counts, "stage_seconds": json.dumps(stages, sort_keys=True, default=str)}
    warehouse.write_run_outputs(
        path, run_id, as_of,
        model_versions=outputs.model_versions, recommendations=outputs.recommendations,
        forecasts=outputs.forecasts, data_issues=outputs.data_issues, counts=counts,
        message=outputs.message[:500], status=outputs.status,
    )  # fmt: skip
