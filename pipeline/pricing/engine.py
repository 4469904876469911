"""The engine: `recommend`, one price per product under the business rules (DESIGN section 5).

It runs the steps of the package in order: prepare the inputs and their allowed ranges
(`inputs`), decide the holds, ladders and the coupled choice (`choice`), then score the chosen
and today's prices (`scoring`), name the binding rule and write the reason (`explain`) into one
row per product with the columns of `contract.RECOMMENDATION_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import polars as pl

from pipeline.arrays import FloatArray, StrArray
from pipeline.config import PricingConfig
from pipeline.contract import (
    ACTION_DECREASE,
    ACTION_HOLD,
    ACTION_INCREASE,
    ACTION_KEEP,
    RECOMMENDATION_COLUMNS,
)
from pipeline.pricing.choice import CHANGE, ENDING, FLOOR, HOLD, Choice, decide
from pipeline.pricing.explain import endings_text, explain
from pipeline.pricing.inputs import Inputs, float_column, prepare_inputs, walks
from pipeline.pricing.ladder import PRICE_TOL, PriceRange
from pipeline.pricing.scoring import binding_rules, score_prices, unconstrained_optimum


def _final_rules(
    prange: PriceRange, choice: Choice, optimum: FloatArray, current: FloatArray
) -> StrArray:
    rule = binding_rules(choice.price, choice.ladder, prange, optimum)
    rule = np.where(choice.limited != "", choice.limited, rule)
    rule = np.where(choice.outcome == ENDING, "price_ending", rule)
    # A price the bounds force: the rule that stopped it short of them, else the bound it met.
    short = prange.short_rule != ""
    at_base = np.abs(choice.price - prange.base) <= PRICE_TOL * np.maximum(1.0, prange.base)
    rule = np.where(short & at_base, prange.short_rule, rule)
    met = np.where(choice.price > current, prange.need_rule, "max_price")
    rule = np.where(choice.outcome == FLOOR, np.where(short, prange.short_rule, met), rule)
    return np.where(choice.outcome == HOLD, choice.held_rule, rule).astype(object)


def _changed(choice: Choice) -> npt.NDArray[np.bool_]:
    return np.isin(choice.outcome, (CHANGE, FLOOR))


def _actions(choice: Choice, current: FloatArray) -> StrArray:
    direction = np.where(choice.price > current, ACTION_INCREASE, ACTION_DECREASE)
    changed = np.where(_changed(choice), direction, ACTION_KEEP)
    return np.where(choice.outcome == HOLD, ACTION_HOLD, changed).astype(object)


def _texts(
    inputs: Inputs, choice: Choice, rule: StrArray, gain: FloatArray, optimum: FloatArray
) -> dict[str, npt.ArrayLike]:
    """The columns `explain` reads."""
    frame, prange, limits = inputs.frame, inputs.prange, inputs.limits
    return {
        "outcome": choice.outcome,
        "hold": choice.hold,
        "current": float_column(frame, "current_price"),
        "price": choice.price,
        "chosen": choice.chosen,
        "own": choice.own,
        "uplift": gain,
        "rule": rule,
        "limit": choice.limited,
        "family": frame["family_id"].to_numpy(),
        "note": frame["note"].to_numpy(),
        "ends": endings_text(inputs.limits.endings),
        "optimum": optimum,
        "lower": prange.lower,
        "upper": prange.upper,
        "e": float_column(frame, "elasticity"),
        "lo": float_column(frame, "elasticity_lo"),
        "hi": float_column(frame, "elasticity_hi"),
        "cost": float_column(frame, "unit_cost"),
        "floor": prange.floor,
        "need": prange.need,
        "min_price": np.asarray(limits.min_price, dtype=float),
        "max_price": np.asarray(limits.max_price, dtype=float),
        "feasible": prange.feasible,
        "short": prange.short_rule,
        "keeps": choice.keeps,
        "seen_lo": float_column(frame, "price_seen_lo"),
        "seen_hi": float_column(frame, "price_seen_hi"),
        "walks": walks(frame),
    }


def _output(inputs: Inputs, choice: Choice, cfg: PricingConfig) -> pl.DataFrame:
    frame, prange = inputs.frame, inputs.prange
    cur, e = float_column(frame, "current_price"), float_column(frame, "elasticity")
    new, now = score_prices(frame, choice.price), score_prices(frame, cur)
    optimum = unconstrained_optimum(e, float_column(frame, "unit_cost"), cfg.objective)
    rule = _final_rules(prange, choice, optimum, cur)
    profit, now_profit = np.round(new.profit, 2), np.round(now.profit, 2)
    # The sentence quotes the same cents as the columns, so it is computed from rounded values.
    gain = np.round(new.objective(cfg.objective), 2) - np.round(now.objective(cfg.objective), 2)
    texts = _texts(inputs, choice, rule, gain, optimum)
    # Bounds of a conflicting range are not an allowed range: leave them empty.
    shown = prange.feasible & np.isfinite(cur)
    return _frame(
        {
            "product_id": frame["product_id"],
            "current_price": cur,
            "recommended_price": choice.price,
            "action": _actions(choice, cur),
            "allowed_min": np.where(shown, np.round(prange.lower, 4), np.nan),
            "allowed_max": np.where(shown, np.round(prange.upper, 4), np.nan),
            "expected_units": new.units,
            "expected_revenue": np.round(new.revenue, 2),
            "expected_profit": profit,
            "current_expected_units": now.units,
            "current_expected_revenue": np.round(now.revenue, 2),
            "current_expected_profit": now_profit,
            "profit_uplift": np.where(_changed(choice), np.round(profit - now_profit, 2), 0.0),
            "elasticity": e,
            "elasticity_lo": float_column(frame, "elasticity_lo"),
            "elasticity_hi": float_column(frame, "elasticity_hi"),
            "binding_rule": rule,
            "reason": explain(texts, cfg),
        }
    )


def _frame(columns: dict[str, object]) -> pl.DataFrame:
    series = []
    for name, values in columns.items():
        if isinstance(values, pl.Series):
            series.append(values.alias(name))
        elif isinstance(values, np.ndarray) and values.dtype.kind == "f":
            series.append(pl.Series(name, values, dtype=pl.Float64).fill_nan(None))
        else:
            series.append(pl.Series(name, values, dtype=pl.String))
    return pl.DataFrame(series).select(RECOMMENDATION_COLUMNS)


def oracle_config(cfg: PricingConfig) -> PricingConfig:
    """The rules for pricing on known, true demand curves (an evaluation's oracle).

    Every business rule stays; the rules about evidence go: an elasticity of -1 or above is
    priced rather than held (a true curve needs no price test), and a demand table without
    `price_seen_lo`/`price_seen_hi` has no trust region.
    """
    return replace(cfg, hold_inelastic=False)


def recommend(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Recommend one price per product under the business rules.

    A product without a forecast, with invalid inputs, held by its forecast's status (see
    `holds.hold_expr`), by heavy stockouts, by an inelastic estimate or by a rule, or whose rules
    conflict keeps its current price with a reason; every other product gets the best ladder
    price for `cfg.objective` under its own rules, the trust region of the prices it has sold at
    and the coupling rules (family order, the change budget, the revenue floor), unless the
    change is below `cfg.min_change` or does not pay. A price below its margin floor (or
    min_price, or above max_price) moves toward it as far as the rules allow, held or not,
    unless its hold keeps it (invalid input, a data issue, a rules-file hold, conflicting rules);
    a price left below cost says why.

    Args:
        products: product_id, current_price, unit_cost, and optionally min_price, max_price,
            is_kvi, category, family_id, size_rank, size.
        demand: product_id, base_units, ref_price, elasticity, and optionally elasticity_lo,
            elasticity_hi, hold_reason, status, stockout_share, dispersion, category,
            price_seen_lo, price_seen_hi (one row per product, from the forecaster's product
            table; without the price_seen columns there is no trust region).
        cfg: pricing rules, hold policy and objective.

    Returns:
        One row per product, sorted by product_id, with the columns of
        `contract.RECOMMENDATION_COLUMNS`.

    Raises:
        ValueError: a required column is missing or a product_id is duplicated.
    """
    inputs = prepare_inputs(products, demand, cfg)
    choice = decide(inputs, cfg)
    return _output(inputs, choice, cfg)
