"""Where a price test may step: the nearest ladder prices above and below today's, inside the rules.

A test's step is a fraction of the price (`explore_step`), but a shelf price is a price on the
ladder: with .99 endings a 4.99 product's next prices are 3.99 and 5.99, 20% away. A step that
rounds back to today's price moves nothing, so the test's step is at least one ladder step, and
that step must lie inside every guardrail (min/max price, the maximum change per run and the KVI
limit, the margin floor, the trust region of the prices the product has sold at: the engine's
own allowed range, `pipeline.pricing.ladder.allowed_range`). A step against the way the
product's estimate points must also lead back, as the test returns to today's price in its next
phase: with .99 endings and 10% limits, 10.99 -> 9.99 is a 9.1% cut and the way back a 10.01%
raise, a cut that could never be undone (`back_up`, `back_down`). Where neither direction has
such a price the product cannot test, and its reason says so.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.config import PricingConfig
from pipeline.pricing.inputs import float_column, prepare_inputs
from pipeline.pricing.ladder import HALF_CENT, PRICE_TOL, ending_extremes

ROOM_SCHEMA: dict[str, type[pl.DataType]] = {
    "product_id": pl.String,
    "room_up": pl.Float64,
    "room_down": pl.Float64,
    "back_up": pl.Boolean,
    "back_down": pl.Boolean,
    "room_min": pl.Float64,
    "room_max": pl.Float64,
}


def step_room(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Each product's nearest allowed ladder price above and below today's price.

    Args:
        products: as for `pricing.recommend`.
        demand: as for `pricing.recommend` (before any test steers it: the trust region is the
            product's own).
        cfg: pricing rules.

    Returns:
        product_id, `room_up` and `room_down` (the nearest ladder price at least `min_change`
        and a cent away from today's price inside the allowed range; null where none),
        `back_up` and `back_down` (whether the maximum change per run allows a way back from
        that step to a ladder price on today's side of it), and the allowed range
        `room_min` .. `room_max` (null where the rules conflict).
    """
    if products.is_empty():
        return pl.DataFrame(schema=ROOM_SCHEMA)
    inputs = prepare_inputs(products, demand, cfg)
    cur = float_column(inputs.frame, "current_price")
    prange, ends = inputs.prange, inputs.limits.endings
    with np.errstate(invalid="ignore"):
        gap = np.maximum(cfg.min_change * cur, HALF_CENT)
        up, _ = ending_extremes(np.fmax(cur + gap, prange.lower), prange.upper, ends)
        _, down = ending_extremes(prange.lower, np.fmin(cur - gap, prange.upper), ends)
        # The way back: a ladder price on today's side of the step, within the change per run.
        limits, tol = inputs.limits, PRICE_TOL * np.maximum(1.0, cur)
        _, back_up = ending_extremes(up * (1 - limits.max_change_down), cur + tol, ends)
        back_down, _ = ending_extremes(cur - tol, down * (1 + limits.max_change_up), ends)
    ok = prange.feasible & np.isfinite(cur)
    return pl.DataFrame(
        {
            "product_id": inputs.frame["product_id"],
            "room_up": np.where(ok, up, np.nan),
            "room_down": np.where(ok, down, np.nan),
            "back_up": np.isfinite(back_up),
            "back_down": np.isfinite(back_down),
            "room_min": np.where(ok, prange.lower, np.nan),
            "room_max": np.where(ok, prange.upper, np.nan),
        },
        schema=ROOM_SCHEMA,
    ).fill_nan(None)


def no_room_reason() -> pl.Expr:
    """Why a product that should test does not: no ladder price one step away inside the rules."""
    return pl.format(
        "no price test: no ladder price one step from {} lies inside the guardrails with a way "
        "back (allowed {} to {}, price endings, the trust region and the change per run "
        "included)",
        pl.col("current_price").round(2),
        pl.col("room_min").round(2),
        pl.col("room_max").round(2),
    )
