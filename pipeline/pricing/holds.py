"""Why a product keeps its price before the choice: forecast status, data issues, rules.

`hold_expr` reads the joined products and forecasts: invalid inputs, a missing forecast, a cold
start, a data issue, the hold policy (`PricingConfig.hold_statuses`), heavy stockouts and invalid
forecasts each hold with a reason. `hold_texts` adds the holds the rules cause: a rules-file hold,
rules that leave an empty range, and endings no rule allows. Everything here is pure.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.arrays import StrArray
from pipeline.config import PricingConfig
from pipeline.contract import DATA_ISSUE, RELEASABLE_STATUSES, STATUS_COLD_START
from pipeline.pricing.ladder import PriceRange
from pipeline.pricing.limits import Limits


def hold_expr(cfg: PricingConfig) -> pl.Expr:
    """Why each product keeps its price before any rule is looked at (null: it may move).

    A forecast's hold_reason holds the product unless its status is one pricing may release
    (`contract.RELEASABLE_STATUSES`) and `cfg.hold_statuses` does not list it; a cold start and
    a data issue are always held.
    """
    cur, cost = pl.col("current_price"), pl.col("unit_cost")
    base, ref, e = pl.col("base_units"), pl.col("ref_price"), pl.col("elasticity")
    reason = pl.col("hold_reason").str.strip_chars()
    reason = pl.when(reason != "").then(reason)
    status, share = pl.col("status"), pl.col("stockout_share")
    policy = status.is_in(list(cfg.hold_statuses)).fill_null(False)
    data_issue = reason.str.starts_with(DATA_ISSUE).fill_null(False)
    released = status.is_in(list(RELEASABLE_STATUSES)).fill_null(False) & ~policy & ~data_issue
    limit = cfg.max_stockout_share
    return (
        pl.when(cur.is_null() | ~cur.is_finite() | (cur <= 0))
        .then(pl.lit("invalid input: current_price is missing or not positive"))
        .when(cost.is_null() | ~cost.is_finite() | (cost < 0))
        .then(pl.lit("invalid input: unit_cost is missing or negative"))
        .when(pl.col("_has_forecast").is_null())
        .then(pl.lit("no forecast"))
        .when(status == STATUS_COLD_START)
        .then(pl.coalesce(reason, pl.lit("cold start: too little history to train a model")))
        .when(data_issue)
        .then(reason)
        .when(policy)
        .then(pl.format("{} (hold_statuses)", pl.coalesce(reason, pl.format("status {}", status))))
        .when(reason.is_not_null() & ~released)
        .then(reason)
        .when(share > limit)
        .then(_stockout_reason(limit))
        .when(base.is_null() | ~base.is_finite() | (base < 0))
        .then(pl.lit("invalid forecast: base_units is missing or negative"))
        .when(ref.is_null() | ~ref.is_finite() | (ref <= 0))
        .then(pl.lit("invalid forecast: ref_price is missing or not positive"))
        .when(e.is_null() | ~e.is_finite() | (e > 0))
        .then(pl.lit("invalid forecast: elasticity is missing or positive"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("hold")
    )


def _stockout_reason(limit: float) -> pl.Expr:
    share = (pl.col("stockout_share") * 100).round(0).cast(pl.Int64)
    return pl.format(
        "heavy stockouts: {}% of recent days out of stock, above max_stockout_share {}%",
        share,
        pl.lit(round(limit * 100)),
    )


def note_expr(cfg: PricingConfig) -> pl.Expr:
    """For a product released from its forecast's hold, the reason it would have been held."""
    status, reason = pl.col("status"), pl.col("hold_reason").str.strip_chars()
    released = status.is_in(list(RELEASABLE_STATUSES)) & ~status.is_in(list(cfg.hold_statuses))
    return pl.when(released.fill_null(False) & (reason != "")).then(reason).alias("note")


def hold_texts(
    frame: pl.DataFrame, prange: PriceRange, limits: Limits
) -> tuple[StrArray, StrArray]:
    """Every hold before the choice: the forecast's and policy's, then the rules'.

    Args:
        frame: the prepared inputs, with the `hold` column of `hold_expr`.
        prange: the allowed range (an empty one holds, naming both rules).
        limits: every product's rules (a rules-file hold, its allowed endings).

    Returns:
        Hold reasons (None: free to move) and, for holds a rule caused, the rule's name ('none'
        where no rule did).
    """
    hold = np.asarray(frame["hold"].to_list(), dtype=object)
    rule = np.full(hold.shape[0], "none", dtype=object)
    free = hold == None  # noqa: E711 (element-wise on an object array)
    hold = np.where(free, limits.hold, hold)
    free &= limits.hold == None  # noqa: E711
    conflict = free & ~prange.feasible
    texts = [
        f"rules conflict: {lr} needs >= {lo:.2f} but {ur} allows <= {hi:.2f}"
        for lr, lo, ur, hi in zip(
            prange.lower_rule[conflict],
            prange.lower[conflict],
            prange.upper_rule[conflict],
            prange.upper[conflict],
            strict=True,
        )
    ]
    hold[conflict] = np.asarray(texts, dtype=object)
    rule[conflict] = prange.conflict_rule[conflict]
    no_ending = free & ~conflict & (limits.endings.index < 0)
    hold[no_ending] = "rules conflict: no price ending is allowed by every rule"
    rule[no_ending] = "price_ending"
    return hold, rule
