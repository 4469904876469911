"""Why a product keeps its price before the choice: forecast status, data issues, rules, evidence.

`hold_expr` reads the joined products and forecasts: invalid inputs, a missing forecast, a cold
start, a data issue, the hold policy (`PricingConfig.hold_statuses`), heavy stockouts and invalid
forecasts each hold with a reason. `hold_texts` adds the holds the rules cause (a rules-file hold,
rules that leave an empty range, endings no rule allows) and the hold on inelastic estimates.

A floor is a floor: a hold for the evidence (a forecast's status, stockouts, an inelastic
estimate) still moves a price below its margin floor toward it; a hold that keeps the price
whatever it is (invalid input or quarantined data, where the cost itself may be wrong; a
rules-file hold, a person's decision; conflicting rules) says so when the price is below it.
Everything here is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import polars as pl

from pipeline.arrays import BoolArray, FloatArray, StrArray
from pipeline.config import PricingConfig
from pipeline.contract import (
    DATA_ISSUE,
    RELEASABLE_STATUSES,
    STATUS_COLD_START,
    STATUS_CONFOUNDED,
)
from pipeline.frames import format_text
from pipeline.pricing.ladder import PriceRange
from pipeline.pricing.limits import Limits

INELASTIC = "inelastic"
# What the policy says of a held status when its forecast gives no reason of its own.
STATUS_REASONS = {
    STATUS_CONFOUNDED: "price moves with demand (confounded): the elasticity cannot be trusted; "
    "a price test (prices set independently of demand) would identify it",
}


def hold_expr(cfg: PricingConfig) -> pl.Expr:
    """Why each product keeps its price before any rule is looked at (null: it may move).

    A forecast's hold_reason holds the product unless its status is one pricing may release
    (`contract.RELEASABLE_STATUSES`) and `cfg.hold_statuses` does not list it; a cold start and
    a data issue are always held.
    """
    cur, cost = pl.col("current_price"), pl.col("unit_cost")
    e = pl.col("elasticity")
    reason = pl.col("hold_reason").str.strip_chars()
    reason = pl.when(reason != "").then(reason)
    status = pl.col("status")
    policy = status.is_in(list(cfg.hold_statuses)).fill_null(False)
    data_issue = _data_issue()
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
        .then(format_text("{} (hold_statuses)", pl.coalesce(reason, _status_reason(status))))
        .when(reason.is_not_null() & ~released)
        .then(reason)
        .when(_stockouts(limit))
        .then(_stockout_reason(limit))
        .when(_bad_base())
        .then(pl.lit("invalid forecast: base_units is missing or negative"))
        .when(_bad_ref())
        .then(pl.lit("invalid forecast: ref_price is missing or not positive"))
        .when(e.is_null() | ~e.is_finite() | (e > 0))
        .then(pl.lit("invalid forecast: elasticity is missing or positive"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("hold")
    )


def held_whatever_status(cfg: PricingConfig) -> pl.Expr:
    """The holds of `hold_expr` no status lifts: a data issue, heavy stockouts (above
    `max_stockout_share`) and a forecast that cannot be priced (base_units or ref_price missing
    or out of range). A price test releases a product from its status's hold, not from these."""
    invalid = (_bad_base() | _bad_ref()).fill_null(True)
    return _data_issue() | _stockouts(cfg.max_stockout_share).fill_null(False) | invalid


def _data_issue() -> pl.Expr:
    return pl.col("hold_reason").str.strip_chars().str.starts_with(DATA_ISSUE).fill_null(False)


def _stockouts(limit: float) -> pl.Expr:
    return pl.col("stockout_share") > limit


def _bad_base() -> pl.Expr:
    base = pl.col("base_units")
    return base.is_null() | ~base.is_finite() | (base < 0)


def _bad_ref() -> pl.Expr:
    ref = pl.col("ref_price")
    return ref.is_null() | ~ref.is_finite() | (ref <= 0)


def _status_reason(status: pl.Expr) -> pl.Expr:
    default = format_text("status {}", status)
    known = status.replace_strict(STATUS_REASONS, default=None, return_dtype=pl.String)
    return pl.coalesce(known, default)


def keeps_expr() -> pl.Expr:
    """Holds that keep today's price even below the margin floor: invalid input, data issues.

    The unit cost or the price itself may be what is wrong, so no move is made on them.
    """
    cur, cost = pl.col("current_price"), pl.col("unit_cost")
    return (
        cur.is_null()
        | ~cur.is_finite()
        | (cur <= 0)
        | cost.is_null()
        | ~cost.is_finite()
        | (cost < 0)
        | _data_issue()
    ).alias("_keeps")


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


@dataclass(frozen=True)
class Holds:
    """Every hold before the choice.

    Attributes:
        reason: hold reasons (None: free to move).
        rule: for holds a rule caused, the rule's name ('inelastic' for an inelastic estimate;
            'none' where no rule did).
        keeps: holds that keep today's price even below the margin floor (invalid input, data
            issues, a rules-file hold, conflicting rules); other holds move toward the floor.
    """

    reason: StrArray
    rule: StrArray
    keeps: BoolArray


def _number(value: float) -> str:
    return f"{value:.2f}".replace("-0.00", "0.00")


def inelastic_reason(e: float, lo: float, hi: float, objective: str) -> str:
    """Why an estimate of -1 or above holds: no interior optimum, and what would identify it."""
    interval = f", interval {_number(lo)} to {_number(hi)}" if np.isfinite(lo + hi) else ""
    return (
        f"demand looks inelastic ({_number(e)}{interval}): {objective} would rise without bound "
        "with price, so the price is not raised on this evidence; a price test would identify it"
    )


def inelastic(e: FloatArray | float, cfg: PricingConfig) -> BoolArray:
    """[P] Estimates that leave the objective no interior optimum, under `hold_inelastic`.

    Such a product moves only within the prices it has sold at (the trust region without its
    widening, `inputs.prepare_inputs`): inside them the estimate is evidence, beyond them a
    constant elasticity above -1 would raise the price without end. Without `hold_inelastic`
    nothing is flagged (priced like any other product). Takes an array or one estimate.
    """
    if not cfg.hold_inelastic:
        return np.zeros_like(e, dtype=bool)
    with np.errstate(invalid="ignore"):
        return _no_optimum(e, cfg)


def inelastic_expr(cfg: PricingConfig) -> pl.Expr:
    """`inelastic` as a polars expression over the `elasticity` column (false where null)."""
    if not cfg.hold_inelastic:
        return pl.lit(False)
    return _no_optimum(pl.col("elasticity"), cfg).fill_null(False)


@overload
def _no_optimum(e: pl.Expr, cfg: PricingConfig) -> pl.Expr: ...
@overload
def _no_optimum(e: FloatArray | float, cfg: PricingConfig) -> BoolArray: ...
def _no_optimum(e: Any, cfg: PricingConfig) -> Any:
    """The objective has no interior optimum at elasticity `e` (an array or an expression)."""
    # Profit at e = -1 still rises with price (towards the full price); revenue is flat.
    return (e >= -1) if cfg.objective == "profit" else (e > -1)


def _inelastic(frame: pl.DataFrame, free: BoolArray, cfg: PricingConfig) -> StrArray:
    """Hold reasons for free products with an inelastic estimate and no prices sold at.

    With the prices it has sold at, an inelastic product moves within them instead (see
    `inelastic`); without them (no uncensored day) nothing bounds it, so it keeps its price.
    """
    e, lo, hi = (
        frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for c in ("elasticity", "elasticity_lo", "elasticity_hi")
    )
    seen_hi = (
        frame["price_seen_hi"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if "price_seen_hi" in frame.columns
        else np.full(e.shape[0], np.nan)
    )
    rows = np.flatnonzero(free & inelastic(e, cfg) & ~np.isfinite(seen_hi))
    reason = np.full(e.shape[0], None, dtype=object)
    for i in rows:
        reason[i] = inelastic_reason(e[i], lo[i], hi[i], cfg.objective)
    return reason


def hold_texts(
    frame: pl.DataFrame, prange: PriceRange, limits: Limits, cfg: PricingConfig
) -> Holds:
    """Every hold before the choice: the forecast's and policy's, the rules', then the evidence's.

    Args:
        frame: the prepared inputs, with the `hold` and `_keeps` columns of `hold_expr` and
            `keeps_expr`.
        prange: the allowed range (an empty one holds, naming both rules).
        limits: every product's rules (a rules-file hold, its allowed endings).
        cfg: the hold policy (`hold_inelastic`) and objective.

    Returns:
        The hold reasons, the rules that caused them and which holds keep today's price.
    """
    hold = np.asarray(frame["hold"].to_list(), dtype=object)
    keeps = frame["_keeps"].to_numpy().astype(bool)
    rule = np.full(hold.shape[0], "none", dtype=object)
    free = hold == None  # noqa: E711 (element-wise on an object array)
    hold = np.where(free, limits.hold, hold)
    keeps |= free & (limits.hold != None)  # noqa: E711
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
    keeps |= conflict | no_ending
    free &= ~conflict & ~no_ending
    inelastic = _inelastic(frame, free, cfg)
    flat = inelastic != None  # noqa: E711
    hold[flat], rule[flat] = inelastic[flat], INELASTIC
    return Holds(reason=hold, rule=rule, keeps=keeps)
