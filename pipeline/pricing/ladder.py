"""Steps 1-2 of the engine: the prices the rules allow, and the candidate ladder inside them.

Rules are applied in order (DESIGN section 5): min_price/max_price -> maximum change per run ->
margin floor over unit cost; the most restrictive bound wins and its rule is recorded. The ladder
holds the prices inside that range that end in an allowed ending (e.g. .99), walked in whole
cents, plus the current price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.arrays import BoolArray, FloatArray, IntArray, StrArray
from pipeline.config import PricingConfig
from pipeline.pricing.limits import Endings, Limits

# Rules are applied in this order; in a conflict the later rule is the one that emptied the range.
RULE_ORDER: dict[str, int] = {
    "min_price": 0,
    "max_price": 0,
    "max_change_up": 1,
    "max_change_down": 1,
    "margin_floor": 2,
}

# Float prices are compared at a tolerance far below a cent but above float noise.
PRICE_TOL = 1e-9
# Bounds are turned into cents with this slack so that 5.0 * 1.1 = 5.500000000000001 -> 550.
CENT_SLACK = 1e-6


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
        return self.lower <= self.upper + PRICE_TOL * np.maximum(1.0, np.abs(self.upper))

    @property
    def conflict_rule(self) -> StrArray:
        """For an empty range, the rule that emptied it: the later of the two bound rules."""
        lower_order = np.array([RULE_ORDER.get(r, 99) for r in self.lower_rule], dtype=np.int64)
        upper_order = np.array([RULE_ORDER.get(r, 99) for r in self.upper_rule], dtype=np.int64)
        return np.where(lower_order >= upper_order, self.lower_rule, self.upper_rule)


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
    the global, category and product rules (`pipeline.pricing.limits.resolve`), KVI limits included.

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
    lo = np.where(ok, np.ceil(np.where(ok, lower, 0) * 100 - CENT_SLACK), 1).astype(np.int64)
    hi = np.where(ok, np.floor(np.where(ok, upper, 0) * 100 + CENT_SLACK), 0).astype(np.int64)
    lo = np.maximum(lo, 1)
    base = lo // 100
    skip = np.searchsorted(ends, lo - 100 * base, side="left").astype(np.int64)
    span = hi - 100 * base
    upto = (span // 100) * ends.size + np.searchsorted(ends, span % 100, side="right")
    count = np.clip(upto - skip, 0, None).astype(np.int64)
    return _EndingGrid(ends=ends, base=base, skip=skip, count=count)


def ending_prices(
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
    ladder, _ = ending_prices(allowed_min, allowed_max, endings, cfg.n_candidates)
    current = np.asarray(current_price, dtype=float)
    already = np.any(np.abs(ladder - current[:, None]) <= PRICE_TOL, axis=1)
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
    small = (gap > PRICE_TOL) & (gap < min_change * current_price[:, None])
    return np.where(small, np.nan, ladder)
