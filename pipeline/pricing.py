"""Price recommendations: guardrails, candidate ladders, vectorised scoring and the scipy choice.

The demand model comes from the forecaster: for product i the expected units over the horizon at
price x are ``base_units_i * (x / ref_price_i) ** elasticity_i`` with ``elasticity_i <= 0``,
averaged over the elasticity's uncertainty (see `score_candidates`).

The engine runs in small steps, each a function (DESIGN section 5):

1. `rules.resolve` then `allowed_range`: min/max price -> maximum change per run -> margin floor,
   each the most restrictive of the catalogue, global, category and product rules, recording the
   rule that set each bound;
2. `candidate_ladders`: prices inside the range that end in an allowed ending, plus the current
   price; candidates closer to the current price than `min_change` are dropped;
3. `score_candidates` (and `risk_adjusted` for the risk-aware objective): units, revenue and
   profit of every candidate in one numpy pass;
4. `pipeline.portfolio.solve`: one candidate per product, by a per-product argmax while products
   are independent, and under family ordering, the change budget and the revenue floor otherwise;
5. `outcomes` and `binding_rules`: what happened to each product and which rule stopped it short
   of its unconstrained optimum;
6. `explain`: one readable sentence per product.

Holds: a cold start always keeps its price; products whose forecast failed its quality gate or
whose elasticity is not identified keep theirs when their status is in `hold_statuses`, and so do
products with more stockout days than `max_stockout_share`. Everything here is pure: frames and
arrays in, new frames and arrays out, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from pipeline import portfolio
from pipeline.config import PricingConfig
from pipeline.rules import Endings, Limits, resolve

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.object_]

OUTPUT_COLUMNS: tuple[str, ...] = (
    "product_id",
    "current_price",
    "recommended_price",
    "action",
    "allowed_min",
    "allowed_max",
    "expected_units",
    "expected_revenue",
    "expected_profit",
    "current_expected_units",
    "current_expected_revenue",
    "current_expected_profit",
    "profit_uplift",
    "elasticity",
    "elasticity_lo",
    "elasticity_hi",
    "binding_rule",
    "reason",
)

# Rules are applied in this order; in a conflict the later rule is the one that emptied the range.
RULE_ORDER: dict[str, int] = {
    "min_price": 0,
    "max_price": 0,
    "max_change_up": 1,
    "max_change_down": 1,
    "margin_floor": 2,
}

# Outcomes of the choice, before they become actions and sentences. LIMITED: a coupling rule
# (family order, the change budget, the revenue floor) kept a price the product alone would move.
CHANGE, BEST, SMALL, ENDING, HOLD, LIMITED = "change", "best", "small", "ending", "hold", "limited"
# Forecast statuses pricing may release from a hold (`PricingConfig.hold_statuses`); a cold start
# (and any status it does not know) with a hold_reason is always held.
RELEASABLE = ("gate_failed", "not_identified")
# A hold_reason that starts so comes from the run's data checks (pipeline/validate.py puts it
# first): quarantined input always holds, whatever the product's forecast status.
DATA_ISSUE = "data issue"
POOLED = ("cold_start", *RELEASABLE)  # statuses whose elasticity is the category's pooled one

# Float prices are compared at a tolerance far below a cent but above float noise.
_PRICE_TOL = 1e-9
# Bounds are turned into cents with this slack so that 5.0 * 1.1 = 5.500000000000001 -> 550.
_CENT_SLACK = 1e-6


@dataclass(frozen=True)
class PriceRange:
    """The prices the rules allow for each product, and the rule that set each bound.

    Attributes:
        lower: lowest allowed price per product (currency per unit).
        upper: highest allowed price per product.
        lower_rule: name of the rule that set `lower` (e.g. 'margin_floor').
        upper_rule: name of the rule that set `upper` (e.g. 'max_change_up').
    """

    lower: FloatArray
    upper: FloatArray
    lower_rule: StrArray
    upper_rule: StrArray

    @property
    def feasible(self) -> BoolArray:
        """True where some price satisfies every rule (NaN bounds count as infeasible)."""
        return self.lower <= self.upper + _PRICE_TOL * np.maximum(1.0, np.abs(self.upper))

    @property
    def conflict_rule(self) -> StrArray:
        """For an empty range, the rule that emptied it: the later of the two bound rules."""
        lower_order = np.array([RULE_ORDER.get(r, 99) for r in self.lower_rule], dtype=np.int64)
        upper_order = np.array([RULE_ORDER.get(r, 99) for r in self.upper_rule], dtype=np.int64)
        return np.where(lower_order >= upper_order, self.lower_rule, self.upper_rule)


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


# --- step 1: guardrails --------------------------------------------------------------------------


def _tighten(
    bound: FloatArray, rule: StrArray, limit: FloatArray, name: str, lower_side: bool
) -> tuple[FloatArray, StrArray]:
    # Strictly tighter only: on a tie the rule applied first keeps the credit.
    tighter = limit > bound if lower_side else limit < bound
    return np.where(tighter, limit, bound), np.where(tighter, name, rule).astype(object)


def allowed_range(current_price: FloatArray, unit_cost: FloatArray, limits: Limits) -> PriceRange:
    """Apply the price rules in order; the most restrictive bound wins and its rule is recorded.

    Order: min_price/max_price -> max change per run from the current price -> margin floor over
    unit cost. `limits` already holds each rule's most restrictive value over the catalogue and
    the global, category and product rules (`pipeline.rules.resolve`), KVI limits included.

    Args:
        current_price: shelf price now, shape [P].
        unit_cost: cost per unit, shape [P].
        limits: every product's rules.

    Returns:
        The allowed range per product; `lower > upper` where the rules conflict.
    """
    n = current_price.shape[0]
    lower, lower_rule = np.asarray(limits.min_price, dtype=float), np.full(n, "min_price", object)
    upper, upper_rule = np.asarray(limits.max_price, dtype=float), np.full(n, "max_price", object)
    up = current_price * (1 + limits.max_change_up)
    upper, upper_rule = _tighten(upper, upper_rule, up, "max_change_up", False)
    down = current_price * (1 - limits.max_change_down)
    lower, lower_rule = _tighten(lower, lower_rule, down, "max_change_down", True)
    floor = unit_cost * (1 + limits.margin_floor)
    lower, lower_rule = _tighten(lower, lower_rule, floor, "margin_floor", True)
    return PriceRange(lower=lower, upper=upper, lower_rule=lower_rule, upper_rule=upper_rule)


# --- step 2: candidate ladders -------------------------------------------------------------------


@dataclass(frozen=True)
class _EndingGrid:
    """The ending prices inside each range, as an arithmetic walk over whole cents.

    The k-th allowed price from `base` dollars is 100 * (base + k // E) + ends[k % E] cents; the
    product's prices are steps `skip .. skip + count - 1` of that walk.
    """

    ends: IntArray
    base: IntArray
    skip: IntArray
    count: IntArray

    def cents(self, step: IntArray) -> IntArray:
        """Price in cents of the given steps (broadcast against [P, 1])."""
        walk = self.skip[:, None] + step
        n_ends = self.ends.size
        return 100 * (self.base[:, None] + walk // n_ends) + self.ends[walk % n_ends]


def _ending_grid(lower: FloatArray, upper: FloatArray, ends: IntArray) -> _EndingGrid:
    ok = np.isfinite(lower) & np.isfinite(upper)
    # Integer cents avoid float drift (4.35 * 100 = 434.99999...); prices are at least a cent.
    lo = np.where(ok, np.ceil(np.where(ok, lower, 0) * 100 - _CENT_SLACK), 1).astype(np.int64)
    hi = np.where(ok, np.floor(np.where(ok, upper, 0) * 100 + _CENT_SLACK), 0).astype(np.int64)
    lo = np.maximum(lo, 1)
    base = lo // 100
    skip = np.searchsorted(ends, lo - 100 * base, side="left").astype(np.int64)
    span = hi - 100 * base
    upto = (span // 100) * ends.size + np.searchsorted(ends, span % 100, side="right")
    count = np.clip(upto - skip, 0, None).astype(np.int64)
    return _EndingGrid(ends=ends, base=base, skip=skip, count=count)


def _ending_prices(
    lower: FloatArray, upper: FloatArray, endings: Endings, slots: int
) -> tuple[FloatArray, IntArray]:
    """Up to `slots` ending prices per product, spread evenly, and how many the range holds."""
    ladder = np.full((lower.shape[0], slots), np.nan)
    count = np.zeros(lower.shape[0], dtype=np.int64)
    slot = np.arange(slots, dtype=np.int64)[None, :]
    for k, ends in enumerate(endings.sets):
        rows = np.flatnonzero(endings.index == k)
        grid = _ending_grid(lower[rows], upper[rows], ends)
        n = grid.count[:, None]
        # round(slot * (n - 1) / (slots - 1)) in integers; distinct whenever n > slots.
        spread = (2 * slot * (n - 1) + (slots - 1)) // (2 * (slots - 1))
        step = np.where(n > slots, spread, np.minimum(slot, np.maximum(n - 1, 0)))
        ladder[rows] = np.where(slot < n, grid.cents(step) / 100, np.nan)
        count[rows] = grid.count
    return ladder, count


def candidate_ladders(
    current_price: FloatArray,
    allowed_min: FloatArray,
    allowed_max: FloatArray,
    cfg: PricingConfig,
    endings: Endings | None = None,
) -> FloatArray:
    """Candidate prices per product: ending prices inside the range plus the current price.

    At most `cfg.n_candidates` ending prices are kept, spread evenly over the range (an even
    subsample that always keeps both extremes); the current price is always added, even if it
    breaks an ending. NaN bounds give a ladder of the current price alone.

    Args:
        current_price: shelf price now, shape [P].
        allowed_min: lowest allowed price, shape [P].
        allowed_max: highest allowed price, shape [P].
        cfg: pricing rules (price_endings, n_candidates).
        endings: per-product endings (`Limits.endings`); default `cfg.price_endings` for all.

    Returns:
        Prices sorted ascending per row, NaN-padded, shape [P, n_candidates + 1].
    """
    n = current_price.shape[0]
    endings = endings if endings is not None else Endings.uniform(cfg.price_endings, n)
    ladder, _ = _ending_prices(allowed_min, allowed_max, endings, cfg.n_candidates)
    current = np.asarray(current_price, dtype=float)
    already = np.any(np.abs(ladder - current[:, None]) <= _PRICE_TOL, axis=1)
    extra = np.where(already, np.nan, current)[:, None]
    return np.sort(np.hstack([ladder, extra]), axis=1)


def without_small_changes(
    ladder: FloatArray, current_price: FloatArray, min_change: float
) -> FloatArray:
    """The ladder without candidates closer to the current price than `min_change` (relative).

    A relabel this small is not worth making, and dropping such candidates before the choice (not
    reverting them after it) keeps coupled choices, such as a family's order, intact.
    """
    gap = np.abs(ladder - current_price[:, None])
    small = (gap > _PRICE_TOL) & (gap < min_change * current_price[:, None])
    return np.where(small, np.nan, ladder)


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
    at_top = finite_rows & (price >= top - _PRICE_TOL) & (optimum > price + _PRICE_TOL)
    at_bottom = finite_rows & (price <= bottom + _PRICE_TOL) & (optimum < price - _PRICE_TOL)
    upper_rule = np.where(optimum > prange.upper, prange.upper_rule, "price_ending")
    lower_rule = np.where(optimum < prange.lower, prange.lower_rule, "price_ending")
    rule = np.where(at_top, upper_rule, np.where(at_bottom, lower_rule, "none"))
    return rule.astype(object)


# --- step 6: explanations ------------------------------------------------------------------------


def _elasticity_text(e: float, lo: float, hi: float) -> str:
    # math, not numpy: this runs once per product on Python floats.
    if not math.isfinite(e):
        return ""
    text = f"elasticity {e:.2f}"
    if math.isfinite(lo) and math.isfinite(hi):
        text += f", interval {lo:.2f} to {hi:.2f}"
    return f" ({text})"


def _rule_text(rule: str, price: float, optimum: float) -> str:
    if rule == "none":
        return "best price inside the allowed range"
    # The optimum says which side the rule pushed from: above the price means a cap.
    return f"{'capped' if optimum > price else 'floored'} by {rule}"


def _range_text(lower: float, upper: float) -> str:
    # Quote the first and last whole cent inside the range, not roundings that may fall outside.
    first = np.ceil(lower * 100 - _CENT_SLACK) / 100
    last = np.floor(upper * 100 + _CENT_SLACK) / 100
    return f"{first:.2f}-{last:.2f}"


def endings_text(endings: Endings) -> StrArray:
    """Per product, the prices its endings allow, e.g. 'price ending in .49/.99'."""
    texts = [
        "whole-cent price"
        if ends.size == 100
        else "price ending in " + "/".join(f".{c:02d}" for c in ends)
        for ends in endings.sets
    ]
    return np.array([*texts, "price ending allowed by every rule"], dtype=object)[endings.index]


def _coupling_text(rule: str, family: object, cfg: PricingConfig) -> str:
    if rule == portfolio.FAMILY_ORDER:
        per_unit = " nor more per unit" if cfg.family_unit_price else ""
        return f"in family {family} a larger size never costs less than a smaller one{per_unit}"
    if rule == portfolio.MAX_CHANGES:
        return f"at most {cfg.max_changes} price changes per run, taken by larger gains"
    return f"total expected revenue stays at or above {cfg.revenue_floor:.0%} of today's"


def _keep_sentence(row: dict[str, object], cfg: PricingConfig, tail: str) -> str:
    cur, chosen, outcome = float(row["current"]), float(row["chosen"]), row["outcome"]
    if outcome == ENDING:
        return (
            f"keep {cur:.2f}: no {row['ends']} fits the allowed range "
            f"{_range_text(float(row['lower']), float(row['upper']))}{tail}"
        )
    if outcome == SMALL:
        pct = (chosen - cur) / cur * 100
        return (
            f"keep {cur:.2f}: best allowed price {chosen:.2f} ({pct:+.1f}%) is a smaller change "
            f"than min_change {cfg.min_change * 100:.1f}%{tail}"
        )
    rule = str(row["rule"])
    if outcome == LIMITED:
        return (
            f"keep {cur:.2f}: held back by {rule} "
            f"({_coupling_text(rule, row['family'], cfg)}); best price alone "
            f"{float(row['own']):.2f}{tail}"
        )
    bound = "" if rule == "none" else f"; {_rule_text(rule, cur, float(row['optimum']))}"
    return f"keep {cur:.2f}: already the best allowed price{bound}{tail}"


def _change_sentence(row: dict[str, object], cfg: PricingConfig, tail: str) -> str:
    cur, price, rule = float(row["current"]), float(row["price"]), str(row["rule"])
    if row["limit"]:
        why = (
            f"set by {rule} ({_coupling_text(rule, row['family'], cfg)}; best price alone "
            f"{float(row['own']):.2f})"
        )
    else:
        why = _rule_text(rule, price, float(row["optimum"]))
    verb = "raise" if price > cur else "lower"
    return (
        f"{verb} {cur:.2f} -> {price:.2f} ({(price - cur) / cur * 100:+.1f}%): expected "
        f"{cfg.objective} {float(row['uplift']):+.2f} over the horizon; {why}{tail}"
    )


def _sentence(row: dict[str, object], cfg: PricingConfig) -> str:
    if row["outcome"] == HOLD:
        return f"hold {float(row['current']):.2f}: {row['hold']}"
    tail = _elasticity_text(float(row["e"]), float(row["lo"]), float(row["hi"]))
    if row["outcome"] == CHANGE:
        text = _change_sentence(row, cfg, tail)
    else:
        text = _keep_sentence(row, cfg, tail)
    note = row["note"]
    return text if not note else f"{text}; priced although {note} (not in hold_statuses)"


def explain(columns: dict[str, npt.ArrayLike], cfg: PricingConfig) -> list[str]:
    """One readable sentence per product.

    Args:
        columns: equal-length arrays 'outcome', 'hold', 'current', 'price', 'chosen' (best
            allowed price alone, before min_change), 'own' (best price alone), 'uplift'
            (objective uplift), 'rule', 'limit' (the coupling rule, or ''), 'family', 'note'
            (why a released product would have been held), 'ends' (its endings, in words),
            'optimum', 'lower', 'upper', 'e', 'lo', 'hi'.
        cfg: pricing rules (min_change, the coupling limits and the objective's name).

    Returns:
        The sentences, in row order.
    """
    names = list(columns)
    values = [np.asarray(columns[name]).tolist() for name in names]
    return [_sentence(dict(zip(names, row, strict=True)), cfg) for row in zip(*values, strict=True)]


# --- the whole run -------------------------------------------------------------------------------


def _require(frame: pl.DataFrame, label: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{label} is missing column(s) {', '.join(missing)}: add them")
    duplicated = frame.filter(pl.col("product_id").is_duplicated())["product_id"]
    if duplicated.len() > 0:
        raise ValueError(
            f"{label} has duplicate product_id {duplicated[0]!r}: keep one row per product"
        )


def _floats(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    # NaN and null both mean "unknown" downstream, so fold NaN into null once here.
    present = [c for c in columns if c in frame.columns]
    absent = [pl.lit(None, dtype=pl.Float64).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(
        *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in present], *absent
    )


def _hold_expr(cfg: PricingConfig) -> pl.Expr:
    """Why each product keeps its price before any rule is looked at (null: it may move).

    A forecast's hold_reason holds the product unless its status is one pricing may release
    (`RELEASABLE`) and `cfg.hold_statuses` does not list it; a cold start and a data issue are
    always held.
    """
    cur, cost = pl.col("current_price"), pl.col("unit_cost")
    base, ref, e = pl.col("base_units"), pl.col("ref_price"), pl.col("elasticity")
    reason = pl.col("hold_reason").str.strip_chars()
    reason = pl.when(reason != "").then(reason)
    status, share = pl.col("status"), pl.col("stockout_share")
    policy = status.is_in(list(cfg.hold_statuses)).fill_null(False)
    data_issue = reason.str.starts_with(DATA_ISSUE).fill_null(False)
    released = status.is_in(list(RELEASABLE)).fill_null(False) & ~policy & ~data_issue
    limit = cfg.max_stockout_share
    return (
        pl.when(cur.is_null() | ~cur.is_finite() | (cur <= 0))
        .then(pl.lit("invalid input: current_price is missing or not positive"))
        .when(cost.is_null() | ~cost.is_finite() | (cost < 0))
        .then(pl.lit("invalid input: unit_cost is missing or negative"))
        .when(pl.col("_has_forecast").is_null())
        .then(pl.lit("no forecast"))
        .when(status == "cold_start")
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


def _note_expr(cfg: PricingConfig) -> pl.Expr:
    """For a product released from its forecast's hold, the reason it would have been held."""
    status, reason = pl.col("status"), pl.col("hold_reason").str.strip_chars()
    released = status.is_in(list(RELEASABLE)) & ~status.is_in(list(cfg.hold_statuses))
    return pl.when(released.fill_null(False) & (reason != "")).then(reason).alias("note")


def _optional(frame: pl.DataFrame, name: str, dtype: type[pl.DataType]) -> pl.Expr:
    column = pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype=dtype)
    return column.alias(name)


def _catalogue(products: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    _require(products, "products", ("product_id", "current_price", "unit_cost"))
    if cfg.family_unit_price and "size" not in products.columns:
        raise ValueError(
            "pricing.family_unit_price needs a `size` column in products (quantity per item, "
            "in one unit per family): add it or set family_unit_price = false"
        )
    prices = _floats(products, ("current_price", "unit_cost", "min_price", "max_price", "size"))
    return prices.select(
        pl.col("product_id").cast(pl.String),
        "current_price",
        "unit_cost",
        pl.col("min_price").fill_null(pl.col("current_price") * cfg.default_min_price_factor),
        pl.col("max_price").fill_null(pl.col("current_price") * cfg.default_max_price_factor),
        _optional(products, "is_kvi", pl.Boolean).fill_null(False),
        _optional(products, "category", pl.String),
        _optional(products, "family_id", pl.String),
        _optional(products, "size_rank", pl.Int64),
        "size",
    )


_FORECAST_FLOATS = (
    "base_units",
    "ref_price",
    "elasticity",
    "elasticity_lo",
    "elasticity_hi",
    "stockout_share",
    "dispersion",
)


def _prepare(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    _require(demand, "demand", ("product_id", "base_units", "ref_price", "elasticity"))
    forecast = _floats(demand, _FORECAST_FLOATS).select(
        pl.col("product_id").cast(pl.String),
        *_FORECAST_FLOATS,
        _optional(demand, "hold_reason", pl.String),
        _optional(demand, "status", pl.String),
        _optional(demand, "category", pl.String).alias("_forecast_category"),
        pl.lit(True).alias("_has_forecast"),
    )
    joined = _catalogue(products, cfg).join(forecast, on="product_id", how="left")
    category = pl.coalesce("category", "_forecast_category", pl.lit("uncategorised"))
    return (
        joined.with_columns(category.alias("category"))
        .drop("_forecast_category")
        .sort("product_id")
        .with_columns(_hold_expr(cfg), _note_expr(cfg))
    )


def _column(frame: pl.DataFrame, name: str) -> FloatArray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


def _limits(frame: pl.DataFrame, cfg: PricingConfig) -> Limits:
    return resolve(
        frame["product_id"].to_list(),
        frame["category"].to_list(),
        frame["is_kvi"].to_numpy().astype(bool),
        _column(frame, "min_price"),
        _column(frame, "max_price"),
        cfg,
    )


@dataclass(frozen=True)
class _Choice:
    """What the engine decided for every product (internal to `recommend`).

    Attributes:
        price: the recommended price.
        chosen: the best allowed price alone, before min_change (quoted by 'small' keeps).
        own: the best price alone after min_change (quoted when a coupling rule moved it).
        outcome: CHANGE, BEST, SMALL, ENDING, HOLD or LIMITED.
        hold: the hold reason (None where not held).
        held_rule: for holds, the rule that caused it ('none' when no rule did).
        limited: the coupling rule that moved the product off its own best, '' where none did.
        ladder: the candidate prices (before min_change).
    """

    price: FloatArray
    chosen: FloatArray
    own: FloatArray
    outcome: StrArray
    hold: StrArray
    held_rule: StrArray
    limited: StrArray
    ladder: FloatArray


def _hold_texts(
    frame: pl.DataFrame, prange: PriceRange, limits: Limits
) -> tuple[StrArray, StrArray]:
    """Hold reasons (None: free to move) and, for holds a rule caused, the rule's name."""
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


def _elasticity_sd(frame: pl.DataFrame) -> FloatArray:
    """Each elasticity's standard deviation: its own interval's, or its category's spread.

    A pooled elasticity (cold start, gate failed, not identified) is as uncertain as the spread
    of the trained elasticities in its category; an own one's ~90% interval gives its sd.
    """
    e, lo = _column(frame, "elasticity"), _column(frame, "elasticity_lo")
    own = np.where(np.isfinite(e - lo), np.maximum(e - lo, 0.0) / stats.norm.ppf(0.95), 0.0)
    trained = frame.filter(pl.col("status") == "trained")
    overall = trained["elasticity"].std() if trained.height > 1 else None
    spread = trained.group_by("category").agg(pl.col("elasticity").std().alias("_sd"))
    pooled_sd = (
        frame.select("category")
        .join(spread, on="category", how="left", maintain_order="left")["_sd"]
        .fill_null(overall if overall is not None else 0.0)
        .fill_nan(0.0)
        .to_numpy()
    )
    pooled = frame["status"].is_in(list(POOLED)).fill_null(False).to_numpy()
    return np.where(pooled, pooled_sd, own)


def _values(
    frame: pl.DataFrame, ladder: FloatArray, cfg: PricingConfig
) -> tuple[FloatArray, FloatArray]:
    """The objective to maximise and the expected revenue of every candidate, [P, C] each."""
    ref, cost, sd = _column(frame, "ref_price"), _column(frame, "unit_cost"), _elasticity_sd(frame)
    demand = (_column(frame, "base_units"), ref, _column(frame, "elasticity"))
    scores = score_candidates(ladder, *demand, cost, sd)
    if cfg.risk_quantile <= 0:
        return scores.objective(cfg.objective), scores.revenue
    dispersion = np.nan_to_num(_column(frame, "dispersion"), nan=0.0)
    value = risk_adjusted(ladder, scores, ref, sd, dispersion, cost, cfg)
    return value, scores.revenue


def _chains(frame: pl.DataFrame) -> tuple[IntArray, tuple[str, ...]]:
    """Each family's rows from the smallest size (ties by product_id), for families of 2 or more.

    Products without a family_id or a size_rank are outside every family.
    """
    ranked = frame.with_row_index("_row").filter(
        pl.col("family_id").is_not_null() & pl.col("size_rank").is_not_null()
    )
    groups = (
        ranked.sort("family_id", "size_rank", "product_id")
        .group_by("family_id", maintain_order=True)
        .agg(pl.col("_row").cast(pl.Int64))
        .filter(pl.col("_row").list.len() >= 2)
    )
    if groups.height == 0:
        return np.zeros((0, 2), dtype=np.int64), ()
    rows = groups["_row"].to_list()
    chains = np.full((len(rows), max(len(r) for r in rows)), -1, dtype=np.int64)
    for k, members in enumerate(rows):
        chains[k, : len(members)] = members
    return chains, tuple(groups["family_id"].to_list())


def _problem(
    frame: pl.DataFrame,
    ladder: FloatArray,
    value: FloatArray,
    revenue: FloatArray,
    cfg: PricingConfig,
) -> portfolio.Portfolio:
    """The choice over the ladders with the coupling rules of `cfg`."""
    cur = _column(frame, "current_price")
    at = np.abs(ladder - cur[:, None]) <= _PRICE_TOL
    current = np.argmax(at, axis=1).astype(np.int64)
    rows = np.arange(cur.shape[0])
    value = np.where(np.isfinite(ladder), value, np.nan)
    # An unscorable product (held) still needs a finite today's value to take part.
    value[rows, current] = np.nan_to_num(value[rows, current], nan=0.0, posinf=0.0, neginf=0.0)
    revenue = np.where(np.isfinite(revenue), revenue, 0.0)
    chains, names = _chains(frame) if cfg.family_order else (np.zeros((0, 2), np.int64), ())
    size = _column(frame, "size") if cfg.family_unit_price else None
    floor = cfg.revenue_floor * float(revenue[rows, current].sum())
    return portfolio.Portfolio(
        value=value,
        price=ladder,
        revenue=revenue,
        current=current,
        chains=chains,
        unit_size=None if size is None else np.where(size > 0, size, np.nan),
        max_changes=cfg.max_changes if cfg.max_changes >= 0 else None,
        revenue_floor=floor if cfg.revenue_floor > 0 else None,
        chain_names=names,
    )


def outcomes(
    held: BoolArray,
    no_ending: BoolArray,
    solution: portfolio.Solution,
    ideal: IntArray,
    current: IntArray,
) -> StrArray:
    """What happened to each product.

    Args:
        held: products kept at today's price with a reason.
        no_ending: products whose allowed range holds no allowed ending price.
        solution: the coupled choice (its column and each product's own best column).
        ideal: each product's best column alone before min_change.
        current: the column of today's price.

    Returns:
        CHANGE, BEST (already the best), SMALL (the best move is below min_change), LIMITED (a
        coupling rule kept a price the product alone would move), ENDING or HOLD per product.
    """
    keep = solution.column == current
    outcome = np.where(keep, np.where(ideal != current, SMALL, BEST), CHANGE)
    outcome = np.where(keep & (solution.own != current), LIMITED, outcome)
    outcome = np.where(no_ending, ENDING, outcome)
    return np.where(held | solution.held, HOLD, outcome).astype(object)


@dataclass(frozen=True)
class _Inputs:
    """The joined products and forecasts, every product's rules and its allowed range."""

    frame: pl.DataFrame
    limits: Limits
    prange: PriceRange


def _inputs(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> _Inputs:
    frame = _prepare(products, demand, cfg)
    limits = _limits(frame, cfg)
    prange = allowed_range(_column(frame, "current_price"), _column(frame, "unit_cost"), limits)
    return _Inputs(frame, limits, prange)


@dataclass(frozen=True)
class _Stage:
    """Holds decided before the choice, the ladders and the choice problem over them."""

    hold: StrArray
    held_rule: StrArray
    ladder: FloatArray
    problem: portfolio.Portfolio  # over the whole ladder
    chooser: portfolio.Portfolio  # the same without changes below min_change: the one solved


def _stage(inputs: _Inputs, cfg: PricingConfig) -> _Stage:
    frame, limits, prange = inputs.frame, inputs.limits, inputs.prange
    cur = _column(frame, "current_price")
    hold, held_rule = _hold_texts(frame, prange, limits)
    held = hold != None  # noqa: E711 (element-wise on an object array)
    lower = np.where(held, np.nan, prange.lower)
    upper = np.where(held, np.nan, prange.upper)
    ladder = candidate_ladders(cur, lower, upper, cfg, limits.endings)
    problem = _problem(frame, ladder, *_values(frame, ladder, cfg), cfg)
    masked = without_small_changes(ladder, cur, cfg.min_change)
    chooser = replace(problem, value=np.where(np.isfinite(masked), problem.value, np.nan))
    return _Stage(hold, held_rule, ladder, problem, chooser)


def choice_problem(
    products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig
) -> portfolio.Portfolio:
    """The candidate-choice problem `recommend` solves (for benchmarks and solver checks).

    Args:
        products: as for `recommend`.
        demand: as for `recommend`.
        cfg: pricing rules, hold policy and objective.

    Returns:
        The problem over every product's ladder (held products have today's price only), rows in
        product_id order, with the coupling rules of `cfg`.
    """
    return _stage(_inputs(products, demand, cfg), cfg).chooser


def _decide(inputs: _Inputs, cfg: PricingConfig) -> _Choice:
    cur = _column(inputs.frame, "current_price")
    stage = _stage(inputs, cfg)
    held = stage.hold != None  # noqa: E711 (element-wise on an object array)
    solution = portfolio.solve(stage.chooser, cfg.solver, cfg.milp_time_limit)
    ideal = portfolio.independent_best(stage.problem)
    lower = np.where(held, np.nan, inputs.prange.lower)
    upper = np.where(held, np.nan, inputs.prange.upper)
    no_ending = ~held & (_ending_prices(lower, upper, inputs.limits.endings, 2)[1] == 0)
    outcome = outcomes(held, no_ending, solution, ideal, stage.problem.current)

    def price_of(column: IntArray) -> FloatArray:
        return np.take_along_axis(stage.ladder, column[:, None], axis=1)[:, 0]

    return _Choice(
        price=np.where(outcome == CHANGE, price_of(solution.column), cur),
        chosen=price_of(ideal),
        own=price_of(solution.own),
        outcome=outcome,
        hold=np.where(held, stage.hold, solution.reason).astype(object),
        held_rule=np.where(held, stage.held_rule, solution.held_rule).astype(object),
        limited=solution.limited_by,
        ladder=stage.ladder,
    )


def _scorable(frame: pl.DataFrame) -> BoolArray:
    # Score only where every input of the demand model is valid; elsewhere report nothing.
    cur, cost = _column(frame, "current_price"), _column(frame, "unit_cost")
    base, ref, e = (_column(frame, c) for c in ("base_units", "ref_price", "elasticity"))
    with np.errstate(invalid="ignore"):
        return (
            (cur > 0)
            & (cost >= 0)
            & (base >= 0)
            & (ref > 0)
            & (e <= 0)
            & np.isfinite(cur + cost + base + ref + e)
        )


def _scored(frame: pl.DataFrame, price: FloatArray) -> Scores:
    demand = [_column(frame, c) for c in ("base_units", "ref_price", "elasticity", "unit_cost")]
    prices = np.where(_scorable(frame), price, np.nan)[:, None]
    scores = score_candidates(prices, *demand, _elasticity_sd(frame))
    return Scores(
        units=scores.units[:, 0], revenue=scores.revenue[:, 0], profit=scores.profit[:, 0]
    )


def _final_rules(prange: PriceRange, choice: _Choice, optimum: FloatArray) -> StrArray:
    rule = binding_rules(choice.price, choice.ladder, prange, optimum)
    rule = np.where(choice.limited != "", choice.limited, rule)
    rule = np.where(choice.outcome == ENDING, "price_ending", rule)
    return np.where(choice.outcome == HOLD, choice.held_rule, rule).astype(object)


def _actions(choice: _Choice, current: FloatArray) -> StrArray:
    direction = np.where(choice.price > current, "increase", "decrease")
    changed = np.where(choice.outcome == CHANGE, direction, "keep")
    return np.where(choice.outcome == HOLD, "hold", changed).astype(object)


def _texts(
    inputs: _Inputs, choice: _Choice, rule: StrArray, gain: FloatArray, optimum: FloatArray
) -> dict[str, npt.ArrayLike]:
    """The columns `explain` reads."""
    frame, prange = inputs.frame, inputs.prange
    return {
        "outcome": choice.outcome,
        "hold": choice.hold,
        "current": _column(frame, "current_price"),
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
        "e": _column(frame, "elasticity"),
        "lo": _column(frame, "elasticity_lo"),
        "hi": _column(frame, "elasticity_hi"),
    }


def _output(inputs: _Inputs, choice: _Choice, cfg: PricingConfig) -> pl.DataFrame:
    frame, prange = inputs.frame, inputs.prange
    cur, e = _column(frame, "current_price"), _column(frame, "elasticity")
    new, now = _scored(frame, choice.price), _scored(frame, cur)
    optimum = unconstrained_optimum(e, _column(frame, "unit_cost"), cfg.objective)
    rule = _final_rules(prange, choice, optimum)
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
            "profit_uplift": np.where(
                choice.outcome == CHANGE, np.round(profit - now_profit, 2), 0.0
            ),
            "elasticity": e,
            "elasticity_lo": _column(frame, "elasticity_lo"),
            "elasticity_hi": _column(frame, "elasticity_hi"),
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
    return pl.DataFrame(series).select(OUTPUT_COLUMNS)


def recommend(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    """Recommend one price per product under the business rules.

    A product without a forecast, with invalid inputs, held by its forecast's status (see
    `_hold_expr`), by heavy stockouts or by a rule, or whose rules conflict keeps its current
    price with a reason; every other product gets the best ladder price for `cfg.objective`
    under its own rules and the coupling rules (family order, the change budget, the revenue
    floor), unless the change is below `cfg.min_change` or does not pay.

    Args:
        products: product_id, current_price, unit_cost, and optionally min_price, max_price,
            is_kvi, category, family_id, size_rank, size.
        demand: product_id, base_units, ref_price, elasticity, and optionally elasticity_lo,
            elasticity_hi, hold_reason, status, stockout_share, dispersion, category (one row
            per product, from the forecaster's product table).
        cfg: pricing rules, hold policy and objective.

    Returns:
        One row per product, sorted by product_id, with the columns in `OUTPUT_COLUMNS`.

    Raises:
        ValueError: a required column is missing or a product_id is duplicated.
    """
    inputs = _inputs(products, demand, cfg)
    choice = _decide(inputs, cfg)
    return _output(inputs, choice, cfg)
