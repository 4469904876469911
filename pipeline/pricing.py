"""Price recommendations: guardrails, candidate ladders, vectorised scoring and the scipy choice.

The demand model comes from the forecaster: for product i the expected units over the horizon at
price x are ``base_units_i * (x / ref_price_i) ** elasticity_i`` with ``elasticity_i <= 0``.

The engine runs in small steps, each a function that later rules can extend (DESIGN section 5):

1. `allowed_range`: min/max price -> maximum change per run -> margin floor, recording the rule
   that set each bound;
2. `candidate_ladders`: prices inside the range that end in an allowed ending, plus the current
   price;
3. `score_candidates`: units, revenue and profit of every candidate in one numpy pass;
4. `choose`: one candidate per product, by scipy's milp over binary indicators or the exact
   per-product argmax;
5. keep the current price when the change is too small or does not pay;
6. `binding_rules`: which rule stopped the price short of its unconstrained optimum;
7. `explain`: one readable sentence per product.

Everything here is pure: frames and arrays in, new frames and arrays out, no I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from pipeline.config import PricingConfig

logger = logging.getLogger(__name__)

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

# Outcomes of the choice, before they become actions and sentences.
CHANGE, BEST, SMALL, ENDING, HOLD = "change", "best", "small", "ending", "hold"

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


def allowed_range(
    current_price: FloatArray,
    unit_cost: FloatArray,
    min_price: FloatArray,
    max_price: FloatArray,
    is_kvi: BoolArray,
    cfg: PricingConfig,
) -> PriceRange:
    """Apply the price rules in order; the most restrictive bound wins and its rule is recorded.

    Order: min_price/max_price -> max change per run from the current price (the tighter
    kvi_max_change for key-value items, both ways) -> margin floor over unit cost.

    Args:
        current_price: shelf price now, shape [P].
        unit_cost: cost per unit, shape [P].
        min_price: catalogue lower limit, shape [P].
        max_price: catalogue upper limit, shape [P].
        is_kvi: key-value item flags, shape [P].
        cfg: pricing rules.

    Returns:
        The allowed range per product; `lower > upper` where the rules conflict.
    """
    up = np.where(is_kvi, min(cfg.max_change_up, cfg.kvi_max_change), cfg.max_change_up)
    down = np.where(is_kvi, min(cfg.max_change_down, cfg.kvi_max_change), cfg.max_change_down)
    n = current_price.shape[0]
    lower, lower_rule = np.asarray(min_price, dtype=float), np.full(n, "min_price", dtype=object)
    upper, upper_rule = np.asarray(max_price, dtype=float), np.full(n, "max_price", dtype=object)
    upper, upper_rule = _tighten(
        upper, upper_rule, current_price * (1 + up), "max_change_up", False
    )
    lower, lower_rule = _tighten(
        lower, lower_rule, current_price * (1 - down), "max_change_down", True
    )
    floor = unit_cost * (1 + cfg.margin_floor)
    lower, lower_rule = _tighten(lower, lower_rule, floor, "margin_floor", True)
    return PriceRange(lower=lower, upper=upper, lower_rule=lower_rule, upper_rule=upper_rule)


# --- step 2: candidate ladders -------------------------------------------------------------------


def ending_cents(endings: Sequence[float]) -> IntArray:
    """Allowed cent endings as sorted unique integers (0..99); no endings means every cent."""
    if len(endings) == 0:
        return np.arange(100, dtype=np.int64)
    return np.unique(np.rint(np.asarray(endings, dtype=float) * 100).astype(np.int64))


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


def _ending_grid(lower: FloatArray, upper: FloatArray, endings: Sequence[float]) -> _EndingGrid:
    ends = ending_cents(endings)
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


def candidate_ladders(
    current_price: FloatArray,
    allowed_min: FloatArray,
    allowed_max: FloatArray,
    cfg: PricingConfig,
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

    Returns:
        Prices sorted ascending per row, NaN-padded, shape [P, n_candidates + 1].
    """
    grid = _ending_grid(allowed_min, allowed_max, cfg.price_endings)
    slots = cfg.n_candidates
    slot = np.arange(slots, dtype=np.int64)[None, :]
    count = grid.count[:, None]
    # round(slot * (count - 1) / (slots - 1)) in integers; distinct whenever count > slots.
    spread = (2 * slot * (count - 1) + (slots - 1)) // (2 * (slots - 1))
    step = np.where(count > slots, spread, np.minimum(slot, np.maximum(count - 1, 0)))
    ladder = np.where(slot < count, grid.cents(step) / 100, np.nan)
    current = np.asarray(current_price, dtype=float)
    already = np.any(np.abs(ladder - current[:, None]) <= _PRICE_TOL, axis=1)
    extra = np.where(already, np.nan, current)[:, None]
    return np.sort(np.hstack([ladder, extra]), axis=1)


# --- step 3: scoring -----------------------------------------------------------------------------


def score_candidates(
    prices: FloatArray,
    base_units: FloatArray,
    ref_price: FloatArray,
    elasticity: FloatArray,
    unit_cost: FloatArray,
) -> Scores:
    """Expected units, revenue and profit of every candidate, in one vectorised pass.

    Args:
        prices: candidate prices, shape [P, C], NaN where there is no candidate.
        base_units: expected units over the horizon at `ref_price`, shape [P].
        ref_price: the forecast's reference price, shape [P].
        elasticity: constant price elasticity (<= 0), shape [P].
        unit_cost: cost per unit, shape [P].

    Returns:
        The three [P, C] arrays; NaN wherever the price is NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        units = base_units[:, None] * (prices / ref_price[:, None]) ** elasticity[:, None]
        revenue = units * prices
        profit = units * (prices - unit_cost[:, None])
    return Scores(units=units, revenue=revenue, profit=profit)


# --- step 4: the choice --------------------------------------------------------------------------


def choose_argmax(objective: FloatArray) -> IntArray:
    """Best candidate per product by a vectorised argmax (exact while products are independent).

    Args:
        objective: value to maximise, shape [P, C]; NaN or -inf marks a missing candidate.

    Returns:
        Column index per product, -1 where a product has no valid candidate.
    """
    valid = np.isfinite(objective)
    best = np.argmax(np.where(valid, objective, -np.inf), axis=1)
    return np.where(valid.any(axis=1), best, -1).astype(np.int64)


def _solve_milp(objective: FloatArray, time_limit: float | None) -> IntArray | None:
    valid = np.isfinite(objective)
    rows, cols = np.nonzero(valid)
    picked = np.full(objective.shape[0], -1, dtype=np.int64)
    if rows.size == 0:
        return picked
    # One binary per valid candidate; each product with candidates picks exactly one of them.
    n_vars = rows.size
    used_rows, row_of_var = np.unique(rows, return_inverse=True)
    matrix = sparse.csr_array(
        (np.ones(n_vars), (row_of_var, np.arange(n_vars))), shape=(used_rows.size, n_vars)
    )
    options: dict[str, float | bool] = {"disp": False, "mip_rel_gap": 0.0}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)
    result = milp(
        c=-objective[rows, cols],
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(matrix, 1, 1),
        options=options,
    )
    if result.status != 0 or result.x is None:
        logger.warning("milp did not solve the price choice (%s)", result.message)
        return None
    on = result.x > 0.5
    if np.bincount(row_of_var[on], minlength=used_rows.size).max(initial=0) != 1:
        return None
    picked[rows[on]] = cols[on]
    return picked


def choose(
    objective: FloatArray, *, solver: str = "milp", time_limit: float | None = None
) -> IntArray:
    """Pick one candidate per product, maximising the summed objective.

    With `solver="milp"` the choice is a binary program for scipy.optimize.milp: one indicator
    per valid candidate, a sparse row per product summing to one. Coupling rules (family order,
    a change budget, a revenue floor) are further rows over the same indicators. If milp fails or
    hits its time limit, the exact per-product argmax is used instead.

    Args:
        objective: value to maximise, shape [P, C]; NaN or -inf marks a missing candidate.
        solver: "milp" or "argmax".
        time_limit: seconds milp may run (None: no limit).

    Returns:
        Column index per product, -1 where a product has no valid candidate.
    """
    if solver not in ("milp", "argmax"):
        raise ValueError(f"unknown solver {solver!r}: use 'milp' or 'argmax'")
    if solver == "milp":
        picked = _solve_milp(objective, time_limit)
        if picked is not None:
            return picked
        logger.warning("falling back to the per-product argmax")
    return choose_argmax(objective)


# --- step 5: keep rules --------------------------------------------------------------------------


def keep_rules(
    current_price: FloatArray,
    chosen_price: FloatArray,
    chosen_value: FloatArray,
    current_value: FloatArray,
    cfg: PricingConfig,
) -> StrArray:
    """Outcome of each choice: 'change', or keep because it is the 'best' already or too 'small'.

    Args:
        current_price: shelf price now, shape [P].
        chosen_price: best candidate, shape [P].
        chosen_value: objective at the chosen price, shape [P].
        current_value: objective at the current price, shape [P].
        cfg: pricing rules (min_change).

    Returns:
        'change' | 'best' | 'small' per product.
    """
    moved = np.abs(chosen_price - current_price) > _PRICE_TOL
    # A gain within float noise of the objective is no gain (e.g. revenue at elasticity -1 is
    # flat in exact arithmetic): a relabel must pay for itself.
    noise = 1e-9 * np.maximum(1.0, np.abs(current_value))
    pays = chosen_value - current_value > noise
    small = np.abs(chosen_price - current_price) < cfg.min_change * current_price
    outcome = np.where(moved & pays, np.where(small, SMALL, CHANGE), BEST)
    return outcome.astype(object)


# --- step 6: binding rule ------------------------------------------------------------------------


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


# --- step 7: explanations ------------------------------------------------------------------------


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


def _endings_text(cfg: PricingConfig) -> str:
    if not cfg.price_endings:
        return "whole-cent price"
    return "price ending in " + "/".join(f".{c:02d}" for c in ending_cents(cfg.price_endings))


def _sentence(row: dict[str, object], cfg: PricingConfig) -> str:
    cur, price, chosen = float(row["current"]), float(row["price"]), float(row["chosen"])
    tail = _elasticity_text(float(row["e"]), float(row["lo"]), float(row["hi"]))
    outcome, rule = row["outcome"], str(row["rule"])
    if outcome == HOLD:
        return f"hold {cur:.2f}: {row['hold']}"
    if outcome == ENDING:
        return (
            f"keep {cur:.2f}: no {_endings_text(cfg)} fits the allowed range "
            f"{_range_text(float(row['lower']), float(row['upper']))}{tail}"
        )
    if outcome == SMALL:
        pct = (chosen - cur) / cur * 100
        return (
            f"keep {cur:.2f}: best allowed price {chosen:.2f} ({pct:+.1f}%) is a smaller change "
            f"than min_change {cfg.min_change * 100:.1f}%{tail}"
        )
    if outcome == BEST:
        bound = "" if rule == "none" else f"; {_rule_text(rule, price, float(row['optimum']))}"
        return f"keep {cur:.2f}: already the best allowed price{bound}{tail}"
    verb = "raise" if price > cur else "lower"
    return (
        f"{verb} {cur:.2f} -> {price:.2f} ({(price - cur) / cur * 100:+.1f}%): expected "
        f"{cfg.objective} {float(row['uplift']):+.2f} over the horizon; "
        f"{_rule_text(rule, price, float(row['optimum']))}{tail}"
    )


def explain(columns: dict[str, npt.ArrayLike], cfg: PricingConfig) -> list[str]:
    """One readable sentence per product.

    Args:
        columns: equal-length arrays 'outcome', 'hold', 'current', 'price', 'chosen', 'uplift'
            (objective uplift), 'rule', 'optimum', 'lower', 'upper', 'e', 'lo', 'hi'.
        cfg: pricing rules (used for endings, min_change and the objective's name).

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


def _hold_expr() -> pl.Expr:
    cur, cost = pl.col("current_price"), pl.col("unit_cost")
    hold_reason = pl.col("hold_reason").str.strip_chars()
    base, ref, e = pl.col("base_units"), pl.col("ref_price"), pl.col("elasticity")
    return (
        pl.when(cur.is_null() | ~cur.is_finite() | (cur <= 0))
        .then(pl.lit("invalid input: current_price is missing or not positive"))
        .when(cost.is_null() | ~cost.is_finite() | (cost < 0))
        .then(pl.lit("invalid input: unit_cost is missing or negative"))
        .when(pl.col("_has_forecast").is_null())
        .then(pl.lit("no forecast"))
        .when(hold_reason.is_not_null() & (hold_reason != ""))
        .then(hold_reason)
        .when(base.is_null() | ~base.is_finite() | (base < 0))
        .then(pl.lit("invalid forecast: base_units is missing or negative"))
        .when(ref.is_null() | ~ref.is_finite() | (ref <= 0))
        .then(pl.lit("invalid forecast: ref_price is missing or not positive"))
        .when(e.is_null() | ~e.is_finite() | (e > 0))
        .then(pl.lit("invalid forecast: elasticity is missing or positive"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("hold")
    )


def _prepare(products: pl.DataFrame, demand: pl.DataFrame, cfg: PricingConfig) -> pl.DataFrame:
    _require(products, "products", ("product_id", "current_price", "unit_cost"))
    _require(demand, "demand", ("product_id", "base_units", "ref_price", "elasticity"))
    prices = _floats(products, ("current_price", "unit_cost", "min_price", "max_price"))
    kvi = pl.col("is_kvi").cast(pl.Boolean) if "is_kvi" in products.columns else pl.lit(None)
    prices = prices.select(
        pl.col("product_id").cast(pl.String),
        "current_price",
        "unit_cost",
        pl.col("min_price").fill_null(pl.col("current_price") * cfg.default_min_price_factor),
        pl.col("max_price").fill_null(pl.col("current_price") * cfg.default_max_price_factor),
        kvi.fill_null(False).cast(pl.Boolean).alias("is_kvi"),
    )
    forecast = _floats(
        demand, ("base_units", "ref_price", "elasticity", "elasticity_lo", "elasticity_hi")
    )
    reason = pl.col("hold_reason") if "hold_reason" in demand.columns else pl.lit(None)
    forecast = forecast.select(
        pl.col("product_id").cast(pl.String),
        "base_units",
        "ref_price",
        "elasticity",
        "elasticity_lo",
        "elasticity_hi",
        reason.cast(pl.String).alias("hold_reason"),
        pl.lit(True).alias("_has_forecast"),
    )
    joined = prices.join(forecast, on="product_id", how="left").sort("product_id")
    return joined.with_columns(_hold_expr())


def _column(frame: pl.DataFrame, name: str) -> FloatArray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


@dataclass(frozen=True)
class _Choice:
    """What the engine decided for every product (internal to `recommend`)."""

    price: FloatArray
    chosen: FloatArray
    outcome: StrArray
    hold: StrArray
    conflict: BoolArray
    ladder: FloatArray


def _hold_texts(frame: pl.DataFrame, prange: PriceRange) -> tuple[StrArray, BoolArray]:
    hold = np.asarray(frame["hold"].to_list(), dtype=object)
    conflict = (hold == None) & ~prange.feasible  # noqa: E711 (element-wise on an object array)
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
    return hold, conflict


def _decide(frame: pl.DataFrame, prange: PriceRange, cfg: PricingConfig) -> _Choice:
    cur, cost = _column(frame, "current_price"), _column(frame, "unit_cost")
    demand = [_column(frame, c) for c in ("base_units", "ref_price", "elasticity")]
    hold, conflict = _hold_texts(frame, prange)
    held = hold != None  # noqa: E711 (element-wise on an object array)
    lower = np.where(held, np.nan, prange.lower)
    upper = np.where(held, np.nan, prange.upper)
    ladder = candidate_ladders(cur, lower, upper, cfg)
    objective = score_candidates(ladder, *demand, cost).objective(cfg.objective)
    solver = "argmax" if cfg.solver == "auto" else cfg.solver
    picked = np.zeros(cur.shape[0], dtype=np.int64)
    active = np.flatnonzero(~held)
    if active.size:
        picked[active] = choose(objective[active], solver=solver, time_limit=cfg.milp_time_limit)
    # A product with no scorable candidate (picked -1) keeps its price rather than a padding NaN.
    unpicked = held | (picked < 0)
    picked = np.maximum(picked, 0)
    chosen = np.where(unpicked, cur, np.take_along_axis(ladder, picked[:, None], axis=1)[:, 0])
    current_obj = score_candidates(cur[:, None], *demand, cost).objective(cfg.objective)[:, 0]
    best_obj = np.take_along_axis(objective, picked[:, None], axis=1)[:, 0]
    outcome = keep_rules(cur, chosen, best_obj, current_obj, cfg)
    no_ending = _ending_grid(lower, upper, cfg.price_endings).count == 0
    outcome = np.where(held, HOLD, np.where(no_ending, ENDING, outcome)).astype(object)
    price = np.where(outcome == CHANGE, chosen, cur)
    return _Choice(
        price=price, chosen=chosen, outcome=outcome, hold=hold, conflict=conflict, ladder=ladder
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
    scores = score_candidates(prices, *demand)
    return Scores(
        units=scores.units[:, 0], revenue=scores.revenue[:, 0], profit=scores.profit[:, 0]
    )


def _final_rules(prange: PriceRange, choice: _Choice, optimum: FloatArray) -> StrArray:
    rule = binding_rules(choice.price, choice.ladder, prange, optimum)
    rule = np.where(choice.outcome == ENDING, "price_ending", rule)
    # A conflict hold names the rule that emptied the range; other holds were limited by nothing.
    held_rule = np.where(choice.conflict, prange.conflict_rule, "none")
    return np.where(choice.outcome == HOLD, held_rule, rule).astype(object)


def _actions(choice: _Choice, current: FloatArray) -> StrArray:
    direction = np.where(choice.price > current, "increase", "decrease")
    changed = np.where(choice.outcome == CHANGE, direction, "keep")
    return np.where(choice.outcome == HOLD, "hold", changed).astype(object)


def _output(
    frame: pl.DataFrame, prange: PriceRange, choice: _Choice, cfg: PricingConfig
) -> pl.DataFrame:
    cur, e = _column(frame, "current_price"), _column(frame, "elasticity")
    lo, hi = _column(frame, "elasticity_lo"), _column(frame, "elasticity_hi")
    new, now = _scored(frame, choice.price), _scored(frame, cur)
    optimum = unconstrained_optimum(e, _column(frame, "unit_cost"), cfg.objective)
    rule = _final_rules(prange, choice, optimum)
    profit, now_profit = np.round(new.profit, 2), np.round(now.profit, 2)
    # The sentence quotes the same cents as the columns, so it is computed from rounded values.
    gain = np.round(new.objective(cfg.objective), 2) - np.round(now.objective(cfg.objective), 2)
    texts = {"outcome": choice.outcome, "hold": choice.hold, "current": cur}
    texts |= {"price": choice.price, "chosen": choice.chosen, "uplift": gain, "rule": rule}
    texts |= {"optimum": optimum, "lower": prange.lower, "upper": prange.upper}
    texts |= {"e": e, "lo": lo, "hi": hi}
    # Bounds of a conflicting range are not an allowed range: leave them empty.
    shown = ~choice.conflict & np.isfinite(cur)
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
            "elasticity_lo": lo,
            "elasticity_hi": hi,
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

    A product without a forecast, with a `hold_reason`, with invalid inputs, or whose rules
    conflict is held at its current price with a reason; every other product gets the best ladder
    price for `cfg.objective`, unless the change is below `cfg.min_change` or does not pay.

    Args:
        products: product_id, current_price, unit_cost, min_price, max_price, is_kvi.
        demand: product_id, base_units, ref_price, elasticity, elasticity_lo, elasticity_hi,
            hold_reason (one row per product, from the forecaster).
        cfg: pricing rules and objective.

    Returns:
        One row per product, sorted by product_id, with the columns in `OUTPUT_COLUMNS`.

    Raises:
        ValueError: a required column is missing or a product_id is duplicated.
    """
    frame = _prepare(products, demand, cfg)
    prange = allowed_range(
        _column(frame, "current_price"),
        _column(frame, "unit_cost"),
        _column(frame, "min_price"),
        _column(frame, "max_price"),
        frame["is_kvi"].to_numpy().astype(bool),
        cfg,
    )
    choice = _decide(frame, prange, cfg)
    return _output(frame, prange, choice, cfg)
