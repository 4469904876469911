"""Steps 3 and 5 of the engine: scoring candidate prices, and the rule that binds each choice.

The demand model comes from the forecaster: for product i the expected units over the horizon at
price x are ``base_units_i * (x / ref_price_i) ** elasticity_i`` with ``elasticity_i <= 0``,
averaged over the elasticity's uncertainty (`score_candidates`, `elasticity_sd`). Every candidate
of every product is scored in one numpy pass; `risk_adjusted` prices on a low demand quantile
instead. `unconstrained_optimum` is the best price with no rules, and `binding_rules` names the
rule that stopped a price short of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from pipeline.arrays import Z90, BoolArray, FloatArray, StrArray
from pipeline.config import PricingConfig
from pipeline.contract import POOLED_STATUSES, STATUS_TRAINED
from pipeline.pricing.inputs import float_column
from pipeline.pricing.ladder import PRICE_TOL, PriceRange


@dataclass(frozen=True)
class Scores:
    """Expected outcome of every candidate price over the horizon (NaN for missing candidates).

    Attributes:
        units: expected units sold, shape [P, C].
        revenue: expected revenue (currency), shape [P, C].
        profit: expected profit over unit cost (currency), shape [P, C].
    """

    units: FloatArray
    revenue: FloatArray
    profit: FloatArray

    def objective(self, name: str) -> FloatArray:
        """The array to maximise: 'profit' or 'revenue'."""
        if name == "profit":
            return self.profit
        if name == "revenue":
            return self.revenue
        raise ValueError(f"unknown objective {name!r}: use 'profit' or 'revenue'")


# --- step 3: scoring -----------------------------------------------------------------------------


def score_candidates(
    prices: FloatArray,
    base_units: FloatArray,
    ref_price: FloatArray,
    elasticity: FloatArray,
    unit_cost: FloatArray,
    elasticity_sd: FloatArray | None = None,
) -> Scores:
    """Expected units, revenue and profit of every candidate, in one vectorised pass.

    With `elasticity_sd`, the units are the expectation over the elasticity's uncertainty (normal
    with that standard deviation): ``E[(x / ref) ** e] = (x / ref) ** e_hat * exp((sd *
    log(x / ref)) ** 2 / 2)``. The factor is 1 at the reference price and grows slowly away from
    it; it matters for pooled elasticities (sd ~ their category's spread), where the point
    estimate's demand is the median, not the mean, and pricing on it leaves profit behind.

    Args:
        prices: candidate prices, shape [P, C], NaN where there is no candidate.
        base_units: expected units over the horizon at `ref_price`, shape [P].
        ref_price: the forecast's reference price, shape [P].
        elasticity: constant price elasticity (<= 0), shape [P].
        unit_cost: cost per unit, shape [P].
        elasticity_sd: standard deviation of each elasticity, shape [P] (None: known exactly).

    Returns:
        The three [P, C] arrays; NaN wherever the price is NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_ratio = np.log(prices / ref_price[:, None])
        log_units = np.log(base_units)[:, None] + elasticity[:, None] * log_ratio
        if elasticity_sd is not None:
            log_units = log_units + 0.5 * (elasticity_sd[:, None] * log_ratio) ** 2
        units = np.where(base_units[:, None] > 0, np.exp(log_units), 0.0 * prices)
        revenue = units * prices
        profit = units * (prices - unit_cost[:, None])
    return Scores(units=units, revenue=revenue, profit=profit)


def risk_adjusted(
    prices: FloatArray,
    scores: Scores,
    ref_price: FloatArray,
    elasticity_sd: FloatArray,
    dispersion: FloatArray,
    unit_cost: FloatArray,
    cfg: PricingConfig,
) -> FloatArray:
    """The objective at a low demand quantile instead of expected demand (`cfg.risk_quantile`).

    Demand over the horizon is taken as log-normal with the expected units as its mean and log
    variance ``(sd_e * log(price / ref_price))**2 + log(1 + dispersion + 1 / units)``: the
    elasticity's uncertainty grows with the distance from the reference price, where the forecast
    saw sales, and the negative-binomial noise (its alpha taken at the horizon total, an upper
    bound) is largest for slow sellers. A profit candidate with a negative margin uses the upper
    quantile, its worse case.

    Args:
        prices: candidate prices, shape [P, C].
        scores: their expected outcomes.
        ref_price: the forecast's reference price, [P].
        elasticity_sd: standard deviation of each elasticity, [P].
        dispersion: negative-binomial alpha, [P].
        unit_cost: cost per unit, [P].
        cfg: `risk_quantile` (in (0, 0.5)) and `objective`.

    Returns:
        The [P, C] objective to maximise.
    """
    z = stats.norm.ppf(cfg.risk_quantile)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        drift = elasticity_sd[:, None] * np.log(prices / ref_price[:, None])
        log_var = drift**2 + np.log1p(dispersion[:, None] + 1.0 / np.maximum(scores.units, 1e-9))
        spread = np.sqrt(log_var)
        margin = prices - unit_cost[:, None] if cfg.objective == "profit" else prices
        quantile = np.exp(-log_var / 2 + np.where(margin < 0, -z, z) * spread)
        return scores.units * quantile * margin


def elasticity_sd(frame: pl.DataFrame) -> FloatArray:
    """Each elasticity's standard deviation: its own interval's, or its category's spread.

    A pooled elasticity (cold start, gate failed, not identified) is as uncertain as the spread
    of the trained elasticities in its category; an own one's ~90% interval gives its sd.
    """
    e, lo = float_column(frame, "elasticity"), float_column(frame, "elasticity_lo")
    own = np.where(np.isfinite(e - lo), np.maximum(e - lo, 0.0) / Z90, 0.0)
    trained = frame.filter(pl.col("status") == STATUS_TRAINED)
    overall = trained["elasticity"].std() if trained.height > 1 else None
    spread = trained.group_by("category").agg(pl.col("elasticity").std().alias("_sd"))
    pooled_sd = (
        frame.select("category")
        .join(spread, on="category", how="left", maintain_order="left")["_sd"]
        .fill_null(overall if overall is not None else 0.0)
        .fill_nan(0.0)
        .to_numpy()
    )
    pooled = frame["status"].is_in(list(POOLED_STATUSES)).fill_null(False).to_numpy()
    return np.where(pooled, pooled_sd, own)


def candidate_values(
    frame: pl.DataFrame, ladder: FloatArray, cfg: PricingConfig
) -> tuple[FloatArray, FloatArray]:
    """The objective to maximise and the expected revenue of every candidate, [P, C] each."""
    ref, cost = float_column(frame, "ref_price"), float_column(frame, "unit_cost")
    sd = elasticity_sd(frame)
    demand = (float_column(frame, "base_units"), ref, float_column(frame, "elasticity"))
    scores = score_candidates(ladder, *demand, cost, sd)
    if cfg.risk_quantile <= 0:
        return scores.objective(cfg.objective), scores.revenue
    dispersion = np.nan_to_num(float_column(frame, "dispersion"), nan=0.0)
    value = risk_adjusted(ladder, scores, ref, sd, dispersion, cost, cfg)
    return value, scores.revenue


def _scorable(frame: pl.DataFrame) -> BoolArray:
    # Score only where every input of the demand model is valid; elsewhere report nothing.
    cur, cost = float_column(frame, "current_price"), float_column(frame, "unit_cost")
    base, ref, e = (float_column(frame, c) for c in ("base_units", "ref_price", "elasticity"))
    with np.errstate(invalid="ignore"):
        return (
            (cur > 0)
            & (cost >= 0)
            & (base >= 0)
            & (ref > 0)
            & (e <= 0)
            & np.isfinite(cur + cost + base + ref + e)
        )


def score_prices(frame: pl.DataFrame, price: FloatArray) -> Scores:
    """Expected units, revenue and profit at one price per product, shape [P] each.

    NaN where the product's inputs cannot be scored (a missing forecast, a positive elasticity).
    """
    names = ("base_units", "ref_price", "elasticity", "unit_cost")
    demand = [float_column(frame, c) for c in names]
    prices = np.where(_scorable(frame), price, np.nan)[:, None]
    scores = score_candidates(prices, *demand, elasticity_sd(frame))
    return Scores(
        units=scores.units[:, 0], revenue=scores.revenue[:, 0], profit=scores.profit[:, 0]
    )


# --- step 5: binding rule ------------------------------------------------------------------------


def unconstrained_optimum(
    elasticity: FloatArray, unit_cost: FloatArray, objective: str
) -> FloatArray:
    """The best price with no rules, for constant elasticity demand.

    Profit: unit_cost * e / (1 + e) when e < -1, +inf (as high as allowed) otherwise. Revenue:
    +inf when e > -1, -inf (as low as allowed) when e < -1, NaN ("any price") when e == -1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if objective == "profit":
            return np.where(elasticity < -1, unit_cost * elasticity / (1 + elasticity), np.inf)
        return np.where(elasticity > -1, np.inf, np.where(elasticity < -1, -np.inf, np.nan))


def binding_rules(
    price: FloatArray, ladder: FloatArray, prange: PriceRange, optimum: FloatArray
) -> StrArray:
    """The rule that stopped each price short of its unconstrained optimum, or 'none'.

    At the top of the ladder with the optimum above it, the rule that set the upper bound binds
    when the optimum lies beyond the bound; otherwise the price ending left no closer price
    ('price_ending'). The lower side mirrors this.

    Args:
        price: recommended price, shape [P].
        ladder: candidate prices, shape [P, C].
        prange: the allowed range.
        optimum: unconstrained optimum per product (+-inf, or NaN for "any").

    Returns:
        Rule name per product.
    """
    finite = np.isfinite(ladder)
    finite_rows = finite.any(axis=1)
    top = np.max(np.where(finite, ladder, -np.inf), axis=1)
    bottom = np.min(np.where(finite, ladder, np.inf), axis=1)
    at_top = finite_rows & (price >= top - PRICE_TOL) & (optimum > price + PRICE_TOL)
    at_bottom = finite_rows & (price <= bottom + PRICE_TOL) & (optimum < price - PRICE_TOL)
    upper_rule = np.where(optimum > prange.upper, prange.upper_rule, "price_ending")
    lower_rule = np.where(optimum < prange.lower, prange.lower_rule, "price_ending")
    rule = np.where(at_top, upper_rule, np.where(at_bottom, lower_rule, "none"))
    return rule.astype(object)
