"""Small seeded data for the forecaster's tests: sales frames, worlds and trainable panels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipeline import synth
from pipeline.contract import SALES_COLUMNS
from pipeline.features import Panel, build_panel

_SALES_TYPES = (pl.String, pl.Date, pl.Float64, pl.Float64, pl.Boolean, pl.Boolean)


def sales_frame(rows: list[tuple]) -> pl.DataFrame:
    """Sales rows (product_id, ds, units, price, promo, stockout) as the contract's frame."""
    return pl.DataFrame(
        rows, schema=dict(zip(SALES_COLUMNS, _SALES_TYPES, strict=True)), orient="row"
    )


def trainable_panel(
    n_products: int, n_days: int, seed: int, min_observed: int
) -> tuple[synth.World, Panel]:
    """A seeded world and the panel of its products with at least `min_observed` days of sales.

    The panel ends the day after the world's last sales day (the forecast origin).
    """
    world = synth.generate_world(n_products=n_products, n_days=n_days, seed=seed)
    as_of = world.sales["ds"].max() + dt.timedelta(days=1)
    panel = build_panel(world.sales, world.products["product_id"].to_list(), as_of)
    return world, panel.select(np.where(panel.n_observed >= min_observed)[0])
